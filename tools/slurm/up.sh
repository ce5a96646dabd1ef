#!/usr/bin/env bash
# A one-node SLURM cluster on this machine for the profile test (Debian 12, slurm-wlm 22.05,
# no systemd): munge, MariaDB + slurmdbd (so that `sacct` works: the executor plugin polls
# with it and hangs without it), slurmctld and slurmd, with fake GPUs as GRES. Run as root.
#   FAKE_GPUS=N  GPUs advertised as gres/gpu (each needs a distinct existing char device)
#   PIDDIR       where the daemons' pid files go (down.sh stops exactly these)
# Pitfalls found here (see ../shared notes): count-only GRES makes the node INVAL; without
# DefMemPerCPU every job takes the whole node; no cgroups, so proctrack/linuxproc.
set -euo pipefail
FAKE_GPUS=${FAKE_GPUS:-1}
PIDDIR=${PIDDIR:-/run/cec-slurm}
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)

packages="munge slurm-wlm slurmctld slurmd slurm-client slurmdbd mariadb-server"
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $packages >/dev/null
fi
installed=$(date +%s)

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 * 80 / 100 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm "$PIDDIR"
devices=(/dev/null /dev/zero /dev/full /dev/urandom)
[ "$FAKE_GPUS" -le ${#devices[@]} ] || { echo "at most ${#devices[@]} fake GPUs" >&2; exit 1; }
: > /etc/slurm/gres.conf
for i in $(seq 0 $((FAKE_GPUS - 1))); do
  echo "NodeName=${host} Name=gpu File=${devices[$i]}" >> /etc/slurm/gres.conf
done
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=cec
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${PIDDIR}/slurmctld.pid
SlurmdPidFile=${PIDDIR}/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=300
ReturnToService=2
AccountingStoreFlags=job_comment
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
GresTypes=gpu
NodeName=${host} CPUs=${cpus} RealMemory=${mem_mb} Gres=gpu:${FAKE_GPUS} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
# a second partition on the same node, never the default: the tiny run's profile names it,
# so its jobs land there only if the profile's placement reaches sbatch
PartitionName=cec Nodes=${host} Default=NO MaxTime=INFINITE State=UP
CONF

# munge
if [ ! -s /etc/munge/munge.key ]; then
  mungekey -c -k /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then  # not already running
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.25; done
  cp /run/munge/munged.pid "$PIDDIR/munged.pid"
fi
munge -n | unmunge >/dev/null

# accounting database + slurmdbd
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 >/var/log/slurm/mariadb.log 2>&1 &
echo $! > "$PIDDIR/mariadbd.pid"
for _ in $(seq 1 60); do mysqladmin ping >/dev/null 2>&1 && break; sleep 0.5; done
mysql -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-ci-only';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
cat > /etc/slurm/slurmdbd.conf <<DBD
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=${PIDDIR}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurm-ci-only
DBD
chmod 600 /etc/slurm/slurmdbd.conf
/usr/sbin/slurmdbd
for _ in $(seq 1 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
sacctmgr -i add cluster cec >/dev/null 2>&1 || true

# a throwaway test cluster: start from a clean slate (-c drops jobs and node states that an
# earlier cluster on this machine saved, e.g. a node left COMPLETING when it was stopped)
/usr/sbin/slurmctld -c
/usr/sbin/slurmd -c
for _ in $(seq 1 60); do sinfo -h -o %T 2>/dev/null | grep -q '^idle' && break; sleep 0.5; done
sinfo -h -o %T | grep -q '^idle' || { echo "the node did not come up:" >&2; sinfo >&2; exit 1; }
end=$(date +%s)
echo "slurm up: install $((installed - start)) s, daemons $((end - installed)) s, total $((end - start)) s"
