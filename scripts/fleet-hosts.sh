#!/usr/bin/env bash
# Test hosts for fleet deploys, on this machine only: each host is a network
# namespace with a veth pair (its address lives in the namespace, the other
# end in the root namespace) running its own OpenSSH server with a host key
# of its own and one authorized test key. Traffic goes only to these
# namespaces.
#
#   scripts/fleet-hosts.sh up DIR ID COUNT   creates COUNT hosts, prints their addresses
#   scripts/fleet-hosts.sh down DIR          stops the servers, deletes the namespaces
#
# ID (1-20) keeps the names and the 10.77.(ID*10+N).0/24 networks of two
# sets apart. DIR gets the client key (DIR/id_ed25519), a known_hosts file
# with every host's key, and what `down` needs. Needs root; installs
# openssh-server, openssh-client and iproute2 when missing.
set -euo pipefail

die() { echo "fleet-hosts: $*" >&2; exit 1; }

install_missing() {
  local need=()
  [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v ssh >/dev/null || need+=(openssh-client)
  command -v ip >/dev/null || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    echo "fleet-hosts: installing ${need[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
}

up() {
  local dir=$1 id=$2 count=$3 i net ns veth peer
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces and sshd)"
  install_missing
  mkdir -p "$dir" /run/sshd
  dir=$(cd "$dir" && pwd)
  : >"$dir/created"
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C deployd-test -f "$dir/id_ed25519"
  cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
  : >"$dir/known_hosts"
  for i in $(seq 1 "$count"); do
    net="10.77.$((id * 10 + i))"
    ns="dfl${id}h${i}"
    veth="dfl${id}r${i}"
    peer="dfl${id}p${i}"
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$veth" 2>/dev/null || true
    ip netns add "$ns"
    echo "ns $ns" >>"$dir/created"
    ip link add "$veth" type veth peer name "$peer"
    echo "link $veth" >>"$dir/created"
    ip link set "$peer" netns "$ns"
    ip addr add "$net.1/24" dev "$veth"
    ip link set "$veth" up
    ip -n "$ns" addr add "$net.2/24" dev "$peer"
    ip -n "$ns" link set "$peer" up
    ip -n "$ns" link set lo up
    mkdir -p "$dir/h$i"
    [ -f "$dir/h$i/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/h$i/host_key"
    cat >"$dir/h$i/sshd_config" <<CONF
ListenAddress $net.2:22
HostKey $dir/h$i/host_key
PidFile $dir/h$i/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
LogLevel ERROR
CONF
    ip netns exec "$ns" /usr/sbin/sshd -f "$dir/h$i/sshd_config" -E "$dir/h$i/sshd.log"
    echo "sshd $dir/h$i/sshd.pid" >>"$dir/created"
    echo "$net.2 $(cut -d' ' -f1,2 "$dir/h$i/host_key.pub")" >>"$dir/known_hosts"
    echo "$net.2"
  done
}

down() {
  local dir=$1 kind what pid
  [ -f "$dir/created" ] || return 0
  # Servers first (by their pid files), then links and namespaces.
  while read -r kind what; do
    if [ "$kind" = sshd ] && [ -f "$what" ]; then
      pid=$(cat "$what")
      kill "$pid" 2>/dev/null || true
    fi
  done <"$dir/created"
  while read -r kind what; do
    case $kind in
      link) ip link del "$what" 2>/dev/null || true ;;
      ns) ip netns del "$what" 2>/dev/null || true ;;
    esac
  done <"$dir/created"
  rm -f "$dir/created"
}

case ${1:-} in
  up) [ $# -eq 4 ] || die "usage: $0 up DIR ID COUNT"; up "$2" "$3" "$4" ;;
  down) [ $# -eq 2 ] || die "usage: $0 down DIR"; down "$2" ;;
  *) die "usage: $0 up DIR ID COUNT | down DIR" ;;
esac
