#!/usr/bin/env bash
# End-to-end smoke tests of the `supcon` tool on a tiny slice of Fashion-MNIST (a few steps of
# a width-4 ResNet-18 on 16x16 crops): pretrain (SupCon, SimCLR), ce and linear run, the loss
# falls, checkpoints are written and reload, a resumed run ends with exactly the tensors of an
# uninterrupted one, Ctrl-C leaves a resumable checkpoint, and the error paths (wrong flag,
# unknown model, missing data folder, bad checkpoint) fail with a message and a non-zero code.
#   bash tests/test_programs.sh PATH/TO/supcon      (exit 77 = skipped: no Fashion-MNIST)
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/programs_setup.sh" "$@"

failures=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
check() { # check NAME COMMAND...: the command must succeed
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# expect_fail NAME CODE PATTERN ARGS...: supcon ARGS must exit with CODE and print PATTERN on stderr
expect_fail() {
    local name=$1 code=$2 pattern=$3; shift 3
    "$supcon" "$@" >out.txt 2>err.txt
    local rc=$?
    if [[ $rc -eq $code ]] && grep -q -- "$pattern" err.txt; then pass "$name"
    else fail "$name (exit $rc, stderr: $(head -c 300 err.txt))"; fi
}
# first_loss / last_loss FOLDER: the loss column of log.csv's first / last epoch
loss_of() { awk -F, -v row="$2" 'NR > 1 {l[NR] = $4; n = NR} END {print (row == "first") ? l[2] : l[n]}' "$1/log.csv"; }
falls() { awk -v a="$(loss_of "$1" first)" -v b="$(loss_of "$1" last)" 'BEGIN {exit !(b < a)}'; }

tiny=(--dataset fashion-mnist --data_folder "$data" --model resnet18 --width 4 --size 16 --batch_size 32
      --num_workers 1 --subset 256 --print_freq 4 --threads 2)

# ---- help and usage errors ----
for cmd in pretrain ce linear; do
    "$supcon" "$cmd" --help >out.txt 2>&1 && grep -q -- '--batch_size' out.txt && check "$cmd --help" true \
        || fail "$cmd --help"
done
expect_fail "wrong flag: usage error" 2 "unknown flag '--bogus'" pretrain --bogus 1
expect_fail "bad value: usage error" 2 "is not a non-negative integer" ce --batch_size many
expect_fail "unknown model" 2 "unknown model 'resnet7'" pretrain --model resnet7
expect_fail "unknown command" 2 "unknown command" pretrian
expect_fail "unknown precision" 2 "--precision: 'fp16' is not fp32, tf32 or bf16" pretrain --precision fp16
expect_fail "missing data folder" 1 "cannot open the fashion-mnist data set" pretrain "${tiny[@]}" \
    --data_folder "$work/no-such-folder" --save_folder pre_missing
check "no save folder left by a failed start" test ! -e pre_missing

# ---- SupCon pre-training: loss falls, checkpoints written and readable ----
"$supcon" pretrain "${tiny[@]}" --epochs 3 --learning_rate 0.1 --temp 0.1 --save_freq 2 --save_folder pre \
    >pre.txt 2>&1
check "pretrain exits with 0" test $? -eq 0
check "pretrain runs" grep -q '^epoch 3, total time' pre.txt
check "pretrain prints progress with images/s and ETA" grep -q 'img/s.*ETA' pre.txt
check "pretrain loss falls (log.csv)" falls pre
check "pretrain writes ckpt_epoch_2 and last" test -s pre/ckpt_epoch_2.safetensors -a -s pre/last.safetensors
"$supcon" info pre/last.safetensors >info.txt 2>&1
check "checkpoint reloads (supcon info)" grep -q '^meta program pretrain' info.txt
check "checkpoint holds the model and SGD state" \
    grep -q '^tensor optimizer.momentum_buffer.encoder.conv1.weight F32' info.txt

"$supcon" pretrain "${tiny[@]}" --method SimCLR --epochs 3 --learning_rate 0.05 --temp 0.2 --save_folder simclr \
    >simclr.txt 2>&1
check "SimCLR pre-training runs, loss falls" falls simclr

embed=$(dirname "$supcon")/embed_images
if [[ -x $embed ]]; then
    "$embed" pre/last.safetensors "$data" 64 emb.csv >emb.txt 2>&1
    check "examples/embed_images embeds with the checkpoint's encoder" \
        test "$(wc -l <emb.csv)" -eq 64 -a "$(head -n 1 emb.csv | tr ',' '\n' | wc -l)" -eq 33
fi

# ---- resume equals uninterrupted ----
resume_flags=("${tiny[@]}" --subset 128 --epochs 2 --learning_rate 0.1 --cosine --temp 0.1)
"$supcon" pretrain "${resume_flags[@]}" --save_folder straight >/dev/null 2>&1
"$supcon" pretrain "${resume_flags[@]}" --save_folder cut --max_steps 3 >cut.txt 2>&1
check "--max_steps stops inside an epoch and saves" grep -q 'stopped (--max_steps) at epoch 1, iteration 3/4' cut.txt
"$supcon" pretrain "${resume_flags[@]}" --save_folder cut --resume cut/last.safetensors >resumed.txt 2>&1
"$supcon" info straight/last.safetensors | grep '^tensor' >a.txt
"$supcon" info cut/last.safetensors | grep '^tensor' >b.txt
same_tensors() { [[ -s a.txt ]] && (($(wc -l <a.txt) > 100)) && cmp -s a.txt b.txt; }
check "resumed run equals the uninterrupted one (every tensor)" same_tensors
check "resumed run says where it resumed" grep -q 'resuming .* at epoch 1, iteration 3' resumed.txt
# TF32 is a permission the CPU does not use: the same run, the same bits
"$supcon" pretrain "${resume_flags[@]}" --precision tf32 --save_folder tf32 >/dev/null 2>&1
"$supcon" info tf32/last.safetensors | grep '^tensor' >b.txt
check "--precision tf32 on the CPU gives fp32's bits" same_tensors
# BF16 rounds on every device: pre's run in bf16 learns as well, to other bits
"$supcon" pretrain "${tiny[@]}" --epochs 3 --learning_rate 0.1 --temp 0.1 --precision bf16 --save_folder pre_bf16 \
    >pre_bf16.txt 2>&1
check "--precision bf16 trains on the CPU, loss falls" falls pre_bf16
check "the run says its precision" grep -q 'cpu backend, bf16$' pre_bf16.txt
near_fp32() { awk -v a="$(loss_of pre last)" -v b="$(loss_of pre_bf16 last)" 'BEGIN {exit !(b < 1.1 * a && a < 1.1 * b)}'; }
check "--precision bf16 ends within 10 % of fp32's loss" near_fp32
"$supcon" info pre/last.safetensors | grep '^tensor' >a.txt
"$supcon" info pre_bf16/last.safetensors | grep '^tensor' >b.txt
differs() { [[ -s b.txt ]] && (($(wc -l <b.txt) > 100)) && ! cmp -s a.txt b.txt; }
check "--precision bf16 gives other bits than fp32" differs

# ---- cross-entropy and linear evaluation ----
"$supcon" ce "${tiny[@]}" --epochs 3 --learning_rate 0.05 --save_folder ce >ce.txt 2>&1
check "ce exits with 0" test $? -eq 0
check "ce validates every epoch" test "$(grep -c '^Val: \* Acc@1' ce.txt)" -eq 3
check "ce ends with best accuracy" grep -Eq '^best accuracy: [0-9]+\.[0-9]{2}$' ce.txt
check "ce loss falls" falls ce
"$supcon" linear "${tiny[@]}" --epochs 2 --ckpt pre/last.safetensors --save_folder lin >lin.txt 2>&1
check "linear exits with 0" test $? -eq 0
check "linear loads the pre-trained encoder and reports" grep -Eq '^best accuracy: [0-9]+\.[0-9]{2}$' lin.txt
check "linear takes the model description from the checkpoint" grep -q 'resnet18 width 4' lin.txt
expect_fail "bad checkpoint (not safetensors)" 1 "data is corrupt" linear "${tiny[@]}" --ckpt pre/log.csv \
    --save_folder lin_bad
expect_fail "missing checkpoint" 1 "cannot open" linear "${tiny[@]}" --ckpt nothing.safetensors --save_folder lin_bad
expect_fail "resume from another program's checkpoint" 1 "is not a checkpoint of 'supcon ce'" ce "${tiny[@]}" \
    --resume pre/last.safetensors --save_folder ce_bad
expect_fail "encoder of another width" 1 "encoder.conv1.weight" linear "${tiny[@]}" --width 8 \
    --ckpt pre/last.safetensors --save_folder lin_bad

# ---- supcon plot: the training curves of a run's log.csv as a PNG ----
png_size() { # png_size FILE: "WIDTHxHEIGHT" when FILE begins with the PNG signature and an IHDR
    [[ $(head -c 16 "$1" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a0000000d49484452 ]] || return 1
    od -An -tu4 --endian=big -j16 -N8 "$1" | awk '{print $1 "x" $2}'
}
"$supcon" plot ce/log.csv >plot.txt 2>&1
check "plot exits with 0, PNG beside the log" test $? -eq 0 -a -s ce/log.png
check "plot writes a 1000x800 PNG" test "$(png_size ce/log.png)" = 1000x800
"$supcon" plot pre/log.csv -o pre_curves.png --title "SupCon pre-training" --width 640 --height=480 >/dev/null 2>&1
check "plot -o --title --width --height (log without accuracy)" test "$(png_size pre_curves.png)" = 640x480
"$supcon" plot --help >out.txt 2>&1 && grep -q -- '--width' out.txt && check "plot --help" true || fail "plot --help"
expect_fail "plot: wrong flag" 2 "unknown flag '--bogus'" plot ce/log.csv --bogus 1
expect_fail "plot: missing log" 1 "cannot read 'nothing.csv'" plot nothing.csv
expect_fail "plot: not a log" 1 "not the header of a supcon log.csv" plot plot.txt

# ---- supcon tsne: kNN accuracy and a t-SNE picture of a checkpoint's encoder features ----
tsne_flags=(--dataset fashion-mnist --data_folder "$data" --subset 256 --num_workers 1 --threads 2 --size 16)
"$supcon" tsne "${tsne_flags[@]}" --ckpt pre/last.safetensors --n 200 --max_iter 300 --out tsne_pre \
    --save_features feats.csv >tsne.txt 2>&1
check "tsne exits with 0" test $? -eq 0
check "tsne reports the kNN accuracy" grep -Eq '^kNN accuracy \(k 20, cosine, votes from the training split\): [0-9.]+%' tsne.txt
check "tsne writes a 1000x800 PNG" test "$(png_size tsne_pre.png)" = 1000x800
check "tsne writes a CSV row per pictured image" test "$(wc -l <tsne_pre.csv)" -eq 201
check "tsne CSV: index,label,class,x,y with class names" grep -q '^[0-9]*,[0-9],"[A-Za-z/ -]*",[-0-9.e]*,[-0-9.e]*$' tsne_pre.csv
check "tsne --save_features: label and 32 features per row" \
    test "$(wc -l <feats.csv)" -eq 200 -a "$(head -n 1 feats.csv | tr ',' '\n' | wc -l)" -eq 33
"$supcon" tsne "${tsne_flags[@]}" --ckpt pre/last.safetensors --n 200 --max_iter 300 --out tsne_again >/dev/null 2>&1
check "tsne is deterministic for a seed" cmp -s tsne_pre.csv tsne_again.csv
"$supcon" tsne "${tsne_flags[@]}" --ckpt ce/last.safetensors --n 0 --max_iter 200 --tsne_method exact \
    --knn_bank self --out tsne_ce >tsne_ce.txt 2>&1
check "tsne of a ce checkpoint: leave-one-out kNN" grep -q 'leave-one-out within the split' tsne_ce.txt
check "tsne of a ce checkpoint: exact t-SNE of all 256 images" grep -q '^t-SNE of 256 points (exact' tsne_ce.txt
check "tsne of a ce checkpoint writes its picture" test "$(png_size tsne_ce.png)" = 1000x800
# A checkpoint that does not describe its encoder (as one converted from the reference's .pth):
# the same-length renames hide the metadata keys; tsne must read the encoder from the tensors.
LC_ALL=C sed 's/"model":"resnet18"/"mdl__":"resnet18"/; s/"width":"4"/"wdth_":"4"/; s/"in_channels":"1"/"in_chan_xxx":"1"/' \
    pre/last.safetensors >bare.safetensors
"$supcon" info bare.safetensors >bare_info.txt 2>&1
"$supcon" tsne "${tsne_flags[@]}" --ckpt bare.safetensors --n 200 --max_iter 300 --out tsne_bare >tsne_bare.txt 2>&1
check "tsne infers resnet18 width 4 from a checkpoint's tensors" \
    test "$(grep -c '^meta \(model\|width\|in_channels\) ' bare_info.txt)" -eq 0 -a -s tsne_bare.png
check "tsne: same kNN accuracy from the inferred encoder" \
    test "$(grep '^kNN' tsne_bare.txt)" = "$(grep '^kNN' tsne.txt)"
"$supcon" tsne --help >out.txt 2>&1 && grep -q -- '--perplexity' out.txt && check "tsne --help" true || fail "tsne --help"
expect_fail "tsne: no checkpoint" 2 "tsne needs --ckpt" tsne "${tsne_flags[@]}"
expect_fail "tsne: bad split" 2 "is not test or train" tsne "${tsne_flags[@]}" --ckpt pre/last.safetensors --split val
expect_fail "tsne: corrupt checkpoint" 1 "data is corrupt" tsne "${tsne_flags[@]}" --ckpt pre/log.csv
expect_fail "tsne: perplexity too large for the points" 1 "perplexity" tsne "${tsne_flags[@]}" \
    --ckpt pre/last.safetensors --n 20

# ---- Ctrl-C: finish the step, save, exit 130; the run then resumes ----
"$supcon" pretrain "${tiny[@]}" --epochs 1000 --print_freq 1 --save_folder intr >intr.txt 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q '^Train:' intr.txt && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
rc=$?
check "Ctrl-C exits with 130" test "$rc" -eq 130
check "Ctrl-C writes a resumable checkpoint" grep -q '^interrupted .*saved .*last.safetensors' intr.txt
"$supcon" pretrain "${tiny[@]}" --epochs 1000 --max_steps 1 --save_folder intr --resume intr/last.safetensors \
    >intr2.txt 2>&1
check "the interrupted run resumes" grep -q '^resuming' intr2.txt

if ((failures)); then
    echo "$failures check(s) failed; outputs kept in ${work}.kept"
    cp -r "$work" "${work}.kept"
    exit 1
fi
echo "all program checks passed"
