# Shared names for the add-on scripts (build-addons.sh, addons.sh). Source after stack/lib.sh.
ADDONS_CACHE="$TP_CACHE_DIR/node/addons"
ADDONS_DIR="$STACK_DIR/addons"
# Images are tagged under localhost/ so a pull can never resolve to a registry; the pods use
# imagePullPolicy: Never.
COREDNS_IMAGE="localhost/coredns:${COREDNS_VERSION#v}"
METRICS_SERVER_IMAGE="localhost/metrics-server:${METRICS_SERVER_VERSION#v}"
addon_bin_dir() { echo "$ADDONS_CACHE/$1-$2"; }
