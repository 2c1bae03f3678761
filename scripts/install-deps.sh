#!/usr/bin/env bash
# Installs, idempotently, the real peers the tests talk to. Nothing is
# installed when everything is already there.
set -euo pipefail

need=()
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v asciinema >/dev/null 2>&1 || need+=(asciinema)
# The software FIDO2 authenticator of the security-key tests is Go built
# with -buildmode=c-shared (cgo): it needs a C compiler and libc headers.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -f /usr/include/stdlib.h ] || need+=(libc6-dev)
[ -x /usr/lib/openssh/ssh-sk-helper ] || need+=(openssh-client)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# sshd's privilege separation directory.
[ -d /run/sshd ] || { [ "$(id -u)" = 0 ] && mkdir -p /run/sshd; } || true
echo "deps ok: $(ssh -V 2>&1), sshd at /usr/sbin/sshd, $(go version)"
