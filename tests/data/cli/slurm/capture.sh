#!/bin/bash
# Re-capture the real Slurm output in this directory (needs scripts/services/slurm-up.sh first).
#
# Every file named *.txt here is what a real Slurm 22.05 printed; this script is how it was made, so
# the parsers' unit tests replay a real scheduler. The squeue format must match
# lwr/managers/cli/schedulers/slurm.py (SQUEUE_FORMAT). Takes about 90 s (one job hits its 1 min limit).
set -uo pipefail
OUT=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/lwr-slurm-capture.XXXXXX)
FMT='%i|%T|%r|%j'

# a job script following LWR's contract: run the command, record stdout/stderr/return_code
job() {  # job NAME COMMAND
    mkdir -p "$W/$1"
    cat > "$W/$1/run.sh" <<SCRIPT
#!/bin/bash
cd "$W/$1"
( $2 ) > "$W/$1/stdout" 2> "$W/$1/stderr"
echo \$? > "$W/$1/return_code.tmp" && mv "$W/$1/return_code.tmp" "$W/$1/return_code"
SCRIPT
    chmod +x "$W/$1/run.sh"
}
submit() {  # submit NAME [sbatch args...]
    local n=$1; shift
    sbatch --parsable --job-name="lwr-capture-$n" --output="$W/$n/slurm.out" --error="$W/$n/slurm.err" "$@" "$W/$n/run.sh"
}
sq() { squeue -h -t all -j "$1" -o "$FMT"; }

job ok "echo hello";       OK=$(submit ok)
# the command fails but the job script still ends well: Slurm says COMPLETED
job fail "exit 3";         FAIL=$(submit fail)
# a job script that dies before it records a return code: Slurm says FAILED
mkdir -p "$W/broken"; printf '#!/bin/bash\nexit 3\n' > "$W/broken/run.sh"; chmod +x "$W/broken/run.sh"
BROKEN=$(submit broken)
job timeout "sleep 600";   T=$(submit timeout --time=1)
job held "true";           HELD=$(submit held --hold)
job busy "sleep 600";      BUSY=$(submit busy)
job wait "true";           WAIT=$(submit wait --cpus-per-task="$(nproc)")
sbatch --parsable --job-name=x --partition=nosuchpartition "$W/ok/run.sh" \
    > "$OUT/sbatch_bad_partition.stdout.txt" 2> "$OUT/sbatch_bad_partition.stderr.txt"
echo "$?" > "$OUT/sbatch_bad_partition.returncode.txt"
echo "$OK" > "$OUT/sbatch_parsable.txt"
sbatch --hold --output=/dev/null "$W/held/run.sh" > "$OUT/sbatch_plain.txt" 2>&1
PLAIN=$(grep -o '[0-9]*$' "$OUT/sbatch_plain.txt")

sleep 5
squeue -h -t all -j "$T,$OK,$FAIL,$HELD,$BUSY,$WAIT,$BROKEN" -o "$FMT" > "$OUT/squeue_mixed.txt"
sq "$BUSY" > "$OUT/squeue_running.txt"
sq "$HELD" > "$OUT/squeue_pending_held.txt"
sq "$WAIT" > "$OUT/squeue_pending_resources.txt"
sq "$OK" > "$OUT/squeue_completed.txt"
sq "$FAIL" > "$OUT/squeue_completed_nonzero_command.txt"
sq "$BROKEN" > "$OUT/squeue_failed.txt"
squeue -h -t all --name=lwr-capture-held -o "$FMT" > "$OUT/squeue_by_name.txt"
squeue -h -t all --name=lwr-capture-nosuchname -o "$FMT" > "$OUT/squeue_by_name_none.txt"
squeue -h -t all -j 999999 -o "$FMT" > "$OUT/squeue_unknown_id.stdout.txt" 2> "$OUT/squeue_unknown_id.stderr.txt"
echo "$?" > "$OUT/squeue_unknown_id.returncode.txt"
scontrol show job "$OK" > "$OUT/scontrol_show_job_completed.txt"
scontrol show job "$BROKEN" > "$OUT/scontrol_show_job_failed.txt"

scancel "$HELD" "$BUSY" "$WAIT" "$PLAIN"; sleep 2
sq "$HELD" > "$OUT/squeue_cancelled_pending.txt"
sq "$BUSY" > "$OUT/squeue_cancelled_running.txt"
scancel "$OK"; echo "$?" > "$OUT/scancel_finished.returncode.txt"
scancel 999999 > /dev/null 2>&1; echo "$?" > "$OUT/scancel_unknown.returncode.txt"

# a running job that ignores SIGTERM: squeue says CANCELLED at once, while slurmd still waits
# KillWait seconds before its SIGKILL
job stubborn "trap '' TERM; sleep 600"; STUB=$(submit stubborn)
for _ in $(seq 50); do [ "$(squeue -h -j "$STUB" -o %T)" = RUNNING ] && break; sleep 0.2; done
sleep 1; scancel "$STUB"; sleep 0.5
sq "$STUB" > "$OUT/squeue_cancelled_while_terminating.txt"

for _ in $(seq 150); do [ "$(squeue -h -t all -j "$T" -o %T)" = TIMEOUT ] && break; sleep 1; done
sq "$T" > "$OUT/squeue_timeout.txt"
scontrol show job "$T" > "$OUT/scontrol_show_job_timeout.txt"
sleep 6
sacct -c -P -n -o jobid,jobname,state,exitcode -j "$T,$OK,$FAIL,$BROKEN,$HELD,$BUSY,$STUB" > "$OUT/sacct_c.txt"
ls "$W"/*/return_code > /dev/null 2>&1
echo "captured into $OUT (work dir $W)"
