#!/usr/bin/env bash
# A single-node SLURM on this machine, from Debian's packages, for the cluster-profile test.
#   local_slurm.sh install   apt-get install munge, slurmctld, slurmd and the client commands
#   local_slurm.sh start     write slurm.conf, start munged, slurmctld and slurmd, wait until the
#                            node is idle
#   local_slurm.sh stop      stop the daemons this script started
#   local_slurm.sh status    sinfo of the local cluster
# Needs root (the daemons run as root; munged as the munge user). The configuration goes where
# every SLURM command and job step looks for it, /etc/slurm/slurm.conf (a file there that this
# script did not write is never overwritten); state and logs go under $SLURM_LOCAL_DIR (default
# /tmp/alignedreid-slurm).
# Settings chosen for a throwaway test cluster: no accounting database (so the executor plugin
# must poll with squeue: MinJobAge keeps finished jobs visible for an hour), no cgroups
# (proctrack/linuxproc), one partition "debug" holding this host with all its cores and memory.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/alignedreid-slurm}
CONF=${SLURM_LOCAL_CONF:-/etc/slurm/slurm.conf}
MARK="# written by tests/cluster/local_slurm.sh"
HOST=$(hostname -s)

die() { echo "local_slurm: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root to start SLURM daemons (now uid $(id -u))"; }

install() {
    need_root
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q munge slurmctld slurmd slurm-client >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q munge slurmctld slurmd slurm-client >/dev/null; } \
        || die "apt-get could not install munge slurmctld slurmd slurm-client"
}

write_conf() {
    mkdir -p "$DIR/ctld" "$DIR/spool" "$(dirname "$CONF")"
    if [ -e "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARK"; then
        die "$CONF exists and was not written by this script; not overwriting a real SLURM configuration"
    fi
    # this machine's real layout (sockets, cores, memory) as slurmd sees it, minus the uptime line
    local node
    node=$(slurmd -C | head -1) || die "slurmd -C failed"
    case "$node" in NodeName=*) ;; *) die "unexpected 'slurmd -C' output: $node" ;; esac
    cat > "$CONF.tmp" <<CONF
$MARK (throwaway single-node test cluster)
ClusterName=alignedreid-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
KillWait=10
SlurmctldPort=${SLURM_LOCAL_CTLD_PORT:-6817}
SlurmdPort=${SLURM_LOCAL_D_PORT:-6818}
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
    mv "$CONF.tmp" "$CONF"
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || create-munge-key -f >/dev/null; chown munge:munge /etc/munge/munge.key; }
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "munge credentials do not round-trip (see /var/log/munge/munged.log)"
}

start() {
    need_root
    command -v slurmctld >/dev/null || die "SLURM is not installed: run '$0 install' first"
    stop_daemons quiet
    write_conf
    start_munge
    export SLURM_CONF=$CONF
    slurmctld -c -f "$CONF" || die "slurmctld did not start; see $DIR/slurmctld.log"
    slurmd -f "$CONF" || die "slurmd did not start; see $DIR/slurmd.log"
    local state=""
    for _ in $(seq 120); do
        state=$(sinfo -h -N -n "$HOST" -o %t 2>/dev/null || true)
        case "$state" in idle*|mix*|alloc*) echo "local_slurm: node $HOST is up ($CONF, logs in $DIR)"; return 0 ;; esac
        sleep 0.5
    done
    echo "--- slurmctld.log" >&2; tail -20 "$DIR/slurmctld.log" >&2 || true
    echo "--- slurmd.log" >&2; tail -20 "$DIR/slurmd.log" >&2 || true
    die "node $HOST did not become idle within 60 s (state: '${state:-unknown}')"
}

stop_daemons() {
    local name pidfile pid
    for name in slurmd slurmctld; do
        pidfile=$DIR/$name.pid
        [ -s "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    if [ "${1:-}" != quiet ] && [ -e "$CONF" ] && head -1 "$CONF" | grep -qF "$MARK"; then rm -f "$CONF"; fi
    [ "${1:-}" = quiet ] || echo "local_slurm: stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop_daemons ;;
    status) SLURM_CONF=$CONF sinfo ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
