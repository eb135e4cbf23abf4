# Host state the real node creates and removes (source it from stack/node.sh): the pod bridge and
# routes, the egress guard, and the clean-up of what kubelet, containerd, runc, CNI and kube-proxy
# leave behind (iptables chains, mounts, cgroups, runtime dirs).

# iptables chains of the node: kubelet (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT),
# kube-proxy (KUBE-SERVICES, KUBE-SVC-*, ...), the CNI portmap/bridge plugins (CNI-*) and ours.
NODE_CHAIN_PATTERN='^(KUBE-|CNI-|TP-NODE-)'
EGRESS_CHAIN=TP-NODE-FORWARD

ensure_node_net() {
  if ! ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
    ip link add "$CNI_BRIDGE" type bridge
    say "bridge $CNI_BRIDGE created"
  fi
  # The CNI bridge plugin (isGateway) expects exactly this address and reuses the bridge.
  ip addr replace "$POD_GATEWAY/${NODE_POD_CIDR#*/}" dev "$CNI_BRIDGE"
  ip link set "$CNI_BRIDGE" up
  # The pod range: this node's /24 is on the bridge (connected route); the rest of the /16 (kwok's
  # fake pod IPs) is a blackhole. The Service range goes to the bridge: host-originated traffic is
  # routed before the OUTPUT DNAT of kube-proxy, so a blackhole would make every ClusterIP fail
  # from the host (connect: Invalid argument); on the bridge an unprogrammed ClusterIP finds no
  # neighbour and never leaves the machine.
  ip route replace blackhole "$CLUSTER_CIDR"
  ip route replace "$SERVICE_CIDR" dev "$CNI_BRIDGE"
  # Egress guard: pods talk to each other (same bridge) and to this host (INPUT, not FORWARD);
  # anything they send elsewhere, or anything forwarded to them from elsewhere, is dropped. In the
  # mangle table, which runs before filter: kube-proxy inserts ACCEPT rules (KUBE-FORWARD) at the
  # top of filter FORWARD and would otherwise come first.
  local ipt=(iptables -w -t mangle)
  "${ipt[@]}" -N "$EGRESS_CHAIN" 2>/dev/null || "${ipt[@]}" -F "$EGRESS_CHAIN"
  "${ipt[@]}" -A "$EGRESS_CHAIN" -i "$CNI_BRIDGE" -o "$CNI_BRIDGE" -j RETURN
  "${ipt[@]}" -A "$EGRESS_CHAIN" -i "$CNI_BRIDGE" -j DROP
  "${ipt[@]}" -A "$EGRESS_CHAIN" -o "$CNI_BRIDGE" -j DROP
  "${ipt[@]}" -C FORWARD -j "$EGRESS_CHAIN" 2>/dev/null || "${ipt[@]}" -I FORWARD 1 -j "$EGRESS_CHAIN"
}

# Every process still in a kubepods cgroup (containers whose shim or runtime is gone) gets SIGKILL.
kill_kubepods_processes() {
  local pids
  pids=$(find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un | xargs || true)
  [[ -n "$pids" ]] || return 0
  say "containers: killing $(wc -w <<<"$pids") process(es) left in kubepods cgroups"
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
}

remove_node_chains() { # one iptables-restore per table: unhook, flush, delete our chains
  local ipt t rules chains script
  for ipt in iptables ip6tables; do
    command -v "$ipt-restore" >/dev/null || continue
    for t in raw mangle nat filter security; do
      rules=$("$ipt" -w -t "$t" -S 2>/dev/null) || continue
      chains=$(awk -v p="$NODE_CHAIN_PATTERN" '$1=="-N" && $2 ~ p {print $2}' <<<"$rules")
      # Jumps into our chains from chains that are not ours (the built-in ones).
      script=$(awk -v p="$NODE_CHAIN_PATTERN" '$1=="-A" && $2 !~ p {
          for (i = 3; i < NF; i++) if (($i == "-j" || $i == "-g") && $(i+1) ~ p) { sub(/^-A/, "-D"); print; break }
        }' <<<"$rules")
      [[ -n "$chains$script" ]] || continue
      {
        echo "*$t"
        [[ -z "$script" ]] || echo "$script"
        for c in $chains; do echo "-F $c"; done
        for c in $chains; do echo "-X $c"; done
        echo COMMIT
      } | "$ipt-restore" -w --noflush || say "warning: $ipt-restore failed for table $t"
      say "iptables: removed $(wc -w <<<"$chains") chain(s) from $ipt $t"
    done
  done
}

node_mounts() { # mount points of the node's state, deepest first
  awk -v n="$NODE_DIR/" '{ m = $5; if (index(m, n) == 1 || index(m, "/run/containerd/") == 1 \
      || m == "/run/containerd" || index(m, "/run/netns/cni-") == 1) print m }' /proc/self/mountinfo \
    | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

unmount_node_mounts() {
  local m n=0
  while IFS= read -r m; do
    [[ -n "$m" ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "warning: could not unmount $m"
    n=$((n + 1))
  done < <(node_mounts)
  ((n == 0)) || say "mounts: unmounted $n under $NODE_DIR, /run/containerd, /run/netns"
}

remove_kubepods_cgroups() {
  local d n=0
  for d in /sys/fs/cgroup/*/kubepods; do
    [[ -d "$d" ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d "$d" ]] && say "warning: $d still present (a process is left in it)" || n=$((n + 1))
  done
  ((n == 0)) || say "cgroups: removed kubepods from $n hierarchies"
}

cleanup_node_host_state() {
  remove_node_chains
  unmount_node_mounts
  rm -rf /run/containerd
  rm -f /run/netns/cni-* 2>/dev/null || true
  remove_kubepods_cgroups
  local veth
  for veth in $(ip -o link show master "$CNI_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$veth" 2>/dev/null || true
  done
  if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
    ip link del "$CNI_BRIDGE" && say "bridge $CNI_BRIDGE removed"
  fi
  # The Service range went with the bridge; while the stack runs it stays a blackhole.
  if ip -4 addr show dev lo | grep -q " $HOST_ADDR/"; then ip route replace blackhole "$SERVICE_CIDR"; fi
  rm -rf "$NODE_DIR/cni/ipam"
  # Pod dirs and logs of containers that no longer exist (only once nothing is mounted there).
  if [[ -z "$(node_mounts)" ]]; then
    rm -rf "$KUBELET_ROOT" "$NODE_DIR/pod-logs"
  fi
  find /var/log/containers -maxdepth 1 -type l -lname "$NODE_DIR/*" -delete 2>/dev/null || true
}
