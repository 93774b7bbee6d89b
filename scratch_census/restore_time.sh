# restore_time.sh DIR CAPACITY ROUNDS BIN...: wall s to "listening", user and sys CPU s, peak RSS; alternating.
dir=$1; cap=$2; rounds=$3; shift 3
tck=$(getconf CLK_TCK)
for round in $(seq 1 $rounds); do for b in "$@"; do
  rm -f /tmp/rs.out
  "$b" --port=0 --capacity=$cap --checkpoint_dir=$dir --wal=false > /tmp/rs.out 2>&1 & pid=$!
  s=$(date +%s.%N); for i in $(seq 1 1000); do grep -q listening /tmp/rs.out && break; sleep 0.01; done; e=$(date +%s.%N)
  hwm=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status)
  read ut st < <(awk '{print $14, $15}' /proc/$pid/stat)
  kill -KILL $pid; wait $pid 2>/dev/null
  printf "%s wall %.2f user %.2f sys %.2f peak %d MB\n" $(basename $b) $(echo "$e - $s" | bc) $(echo "$ut/$tck" | bc -l) $(echo "$st/$tck" | bc -l) $hwm
done; done
