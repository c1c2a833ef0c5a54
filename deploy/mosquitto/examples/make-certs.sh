#!/bin/sh
# A plant CA, the broker's certificate and one client certificate per terminal (optional: only with
# `require_certificate true`). For a trial; a plant with its own PKI uses that instead.
#   sh make-certs.sh plant-broker-1.example.net term-l1 term-l9
# Writes into ./certs: plant-ca.{crt,key} (keep the key offline), broker.{crt,key}, <client>.{crt,key}.
set -eu
broker=$1; shift
mkdir -p certs && cd certs
[ -f plant-ca.key ] || openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=kanban plant CA" \
    -keyout plant-ca.key -out plant-ca.crt
sign() {  # name subject-alt-name
    printf 'subjectAltName=%s\n' "$2" > "$1.ext"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
    openssl x509 -req -in "$1.csr" -CA plant-ca.crt -CAkey plant-ca.key -CAcreateserial -days 825 \
        -extfile "$1.ext" -out "$1.crt"
    rm "$1.csr" "$1.ext"
    chmod 0600 "$1.key"
}
sign broker "DNS:$broker"
for client in "$@"; do sign "$client" "DNS:$client"; done
echo "broker: broker.crt broker.key plant-ca.crt -> /etc/mosquitto/certs/ (key readable by mosquitto only)"
echo "clients: plant-ca.crt as [mqtt] ca_file; <client>.crt/.key as cert_file/key_file"
