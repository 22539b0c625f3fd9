#!/usr/bin/env bash
# A self-signed certificate for development: FreeSWITCH's secure WebSocket (the agent desk's browser phone)
# reads it as wss.pem (the certificate, then its private key) from the folder given, var/certs by default
# (freeswitch-conf/vars.xml hotline_certs_dir). Made once: an existing wss.pem, a real certificate put there
# by the operator or an earlier run, is left alone. Never commit it (var/ is ignored by git).
#
#   scripts/dev-cert.sh [folder] [name ...]    names: host names or IP addresses the browsers use
#                                               (default: localhost 127.0.0.1 ::1)
#
# The browser must trust it before the desk can connect: open https://127.0.0.1:7443 once and accept it,
# or import var/certs/wss.crt as a trusted authority (docs/freeswitch.md, "Browser phone").
set -euo pipefail
folder="${1:-var/certs}"
shift || true
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(localhost 127.0.0.1 ::1)
pem="$folder/wss.pem"
if [ -s "$pem" ]; then
  exit 0
fi
command -v openssl >/dev/null || { echo "dev-cert: openssl is missing (Debian package openssl)" >&2; exit 1; }
san=""
for name in "${names[@]}"; do
  if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then entry="IP:$name"; else entry="DNS:$name"; fi
  san="${san:+$san,}$entry"
done
mkdir -p "$folder"
umask 077
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
  -subj "/O=12345 hotline development/CN=${names[0]}" -addext "subjectAltName=$san" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,digitalSignature,keyCertSign" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$work/wss.key" -out "$work/wss.crt" 2>/dev/null
cat "$work/wss.crt" "$work/wss.key" > "$work/wss.pem"
cp "$work/wss.crt" "$folder/wss.crt"
chmod 644 "$folder/wss.crt"
mv "$work/wss.pem" "$pem"  # private key inside: readable by its owner only (FreeSWITCH runs as that user)
echo "dev-cert: made $pem for ${names[*]} (self-signed, development only)"
