#!/usr/bin/env bash
# The runs behind docs/evaluation.md's table "Small models, every way of reading them": full
# OpinionQA for smollm2 (chat and plain framing) and Gemma-3-270M base (a local folder, made by
# scripts/gemma-folder.sh), under each expression method and with orders 1 and 4.
#   bash scripts/opinion_methods_table.sh [OUT] [GEMMA_DIR]
# Each run is its own resumable run directory OUT/<name>; a finished one is skipped (OUT/<name>.done),
# so the script can be stopped (touch OUT/STOP: it stops before the next run) and started again.
# The text methods (sampled, verbalized) run on every question; TEXT_LIMIT=N runs them on the first N
# only (run names then end in -firstN, so a shorter pass never stands in for the full one).
# Then: python scripts/opinion_methods_table.py OUT/*/
set -uo pipefail
R=${1:-runs/opinion-methods}
G=${2:-runs/models/gemma-3-270m}
T=${TEXT_LIMIT:-}
F=${T:+-first$T}    # name suffix of a shortened text run
L=(${T:+--limit "$T"})
AVA=${AVA:-.venv/bin/ava}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$R"
run() {  # name, then ava eval's arguments
  local name=$1; shift
  [ -f "$R/$name.done" ] && return
  if [ -f "$R/STOP" ]; then echo "stopped before $name $(date -u +%T)" >> "$R/times.log"; exit 0; fi
  echo "=== $name start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$R/times.log"
  "$AVA" eval --no-progress -b opinionqa --out "$R/$name" "$@" > "$R/$name.log" 2>&1
  local rc=$?
  echo "=== $name end $(date -u +%T) rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$R/times.log"
  [ $rc -eq 0 ] && touch "$R/$name.done"
}
run smollm2-chat-o1          -m smollm2 --framing chat
run gemma-o1                 -m "$G" --framing plain
run smollm2-plain-o1         -m smollm2 --framing plain
run smollm2-chat-o4          -m smollm2 --framing chat --set orders=4
run gemma-o4                 -m "$G" --framing plain --set orders=4
run smollm2-chat-sampled$F -m smollm2 --framing chat --expression sampled "${L[@]}"
run smollm2-chat-verbalized$F -m smollm2 --framing chat --expression verbalized "${L[@]}"
run smollm2-chat-cal         -m smollm2 --framing chat --expression calibrated
run gemma-cal                -m "$G" --framing plain --expression calibrated
run gemma-sampled$F -m "$G" --framing plain --expression sampled "${L[@]}"
run gemma-verbalized$F -m "$G" --framing plain --expression verbalized "${L[@]}"
run smollm2-plain-o4         -m smollm2 --framing plain --set orders=4
run smollm2-plain-cal        -m smollm2 --framing plain --expression calibrated
run smollm2-plain-sampled$F -m smollm2 --framing plain --expression sampled "${L[@]}"
run smollm2-plain-verbalized$F -m smollm2 --framing plain --expression verbalized "${L[@]}"
echo "all done $(date -u +%T)" >> "$R/times.log"
