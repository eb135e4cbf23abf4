# sign_cert <dir> <name> <ca> <subject> <extendedKeyUsage> [subjectAltName]: a key and a leaf
# certificate <dir>/<name>.{key,crt} signed by <ca>.{crt,key}. Source it (needs stack/lib.sh).
sign_cert() {
  local dir=$1 name=$2 ca=$3 subj=$4 eku=$5 san=${6:-} base="$1/$2"
  say "pki: $name ($subj${san:+, $san})"
  openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$base.key" -out "$base.csr" \
    -subj "$subj" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    echo "authorityKeyIdentifier=keyid"
    [[ -z "$san" ]] || echo "subjectAltName=$san"
  } > "$base.ext"
  openssl x509 -req -sha256 -days 3650 -in "$base.csr" -CA "$ca.crt" -CAkey "$ca.key" \
    -CAcreateserial -extfile "$base.ext" -out "$base.crt" 2>/dev/null
  chmod 600 "$base.key"
  rm -f "$base.csr" "$base.ext"
}
