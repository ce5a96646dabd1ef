#!/usr/bin/env bash
# Stops the daemons that up.sh started, by the PIDs it recorded, newest first.
PIDDIR=${PIDDIR:-/run/cec-slurm}
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  file="$PIDDIR/$name.pid"
  [ -s "$file" ] || continue
  pid=$(cat "$file")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    echo "stopped $name ($pid)"
  fi
  rm -f "$file"
done
