#!/usr/bin/python3
"""Trains the bundled demo model: espeak-ng speech of fortunes sentences -> MFCC
k-means units (spearlabel km-fit / tokens) -> a small SPEAR-TTS speech->text model
(spear-tts-pytorch 0.4.8 TextToSemantic) -> examples/models/.

    PP=$(MIRROR_ROOT=<mirrors> ../shared/reference/setup_deps.sh)
    PYTHONPATH=$PP /usr/bin/python3 tools/train_demo.py [--minutes 60] [--work build/demo-train]

Stages (each one's output is kept in --work, and a stage whose output exists is
skipped, so an interrupted run continues where it stopped; training resumes from
its last checkpoint):
  sentences  Debian's fortunes (packages fortunes, fortunes-min) split into sentences,
             normalised to 32 characters (examples/demo_corpus.py), 3-14 words;
             shuffled with a fixed seed; the held-out sentences are the first
             --heldout, whose text never appears in training.
  audio      espeak-ng voices en-us and en, speed 140-190, pitch 35-65 (fixed seed),
             16 kHz 16-bit mono via sox.
  kmeans     spearlabel km-fit --features mfcc -k K on --km-utts training utterances.
  tokens     spearlabel tokens --features mfcc --dedup for every utterance.
  train      TextToSemantic speech->text, dim 256, 4 heads of 64, depth 3/3, dropout
             0.1, characters as text ids 1..32 (EOS 33), AdamW with warm-up and cosine
             decay over --minutes of wall time, ~--batch-tokens unit tokens per batch.
  export     weights rounded to float16; tools/convert_spear.py --dtype float16 writes
             examples/models/demo_s2t.safetensors; demo_km.npy, vocab.json and
             demo_heldout.tsv (the held-out sentences with their voice settings) next to it.
  eval       the float16-rounded model decodes the held-out units in Python (greedy
             and the library's beam search, width 4): character error rates and every
             hypothesis go to examples/models/demo_eval.json, with the sha256 of
             each held-out WAV, so the C pipeline can be compared on the same files
             (tests/demo).
Known traps of spear-tts-pytorch 0.4.8 handled here: pads (-1) crash the source
embedding (ids are clamped before the lookup, the mask still hides them); the
default std-1 embedding init starts at a loss of ~54 (re-initialised with std
dim^-0.5); generate() samples unless temperature is ~0.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples"))
import demo_corpus as dc  # noqa: E402

FORTUNES = "/usr/share/games/fortunes"
VOICES = ("en-us", "en")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] train_demo: {msg}", flush=True)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------- sentences, audio
def stage_sentences(a):
    out = os.path.join(a.work, "sentences.json")
    if os.path.exists(out):
        return read_json(out)
    files = sorted(f for f in glob.glob(FORTUNES + "/*")
                   if os.path.isfile(f) and not f.endswith((".dat", ".u8")))
    if not files:
        sys.exit(f"train_demo: no fortunes under {FORTUNES} (apt-get install fortunes fortunes-min)")
    sents = set()
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for fortune in re.split(r"\n%\n", text):
            body = " ".join(fortune.split())
            for s in re.split(r"(?<=[.?!])\s+", body):
                s = dc.normalize(s)
                if s and 3 <= len(s.split()) <= 14 and 10 <= len(s) <= 80:
                    sents.add(s)
    sents = sorted(sents)
    random.Random(a.seed).shuffle(sents)
    need = a.heldout + a.train
    if len(sents) < need:
        sys.exit(f"train_demo: {len(sents)} sentences, need {need}")
    rng = random.Random(a.seed + 1)

    def setting():
        return rng.choice(VOICES), rng.randint(140, 190), rng.randint(35, 65)

    heldout = [(f"h{i:03d}", *setting(), t) for i, t in enumerate(sents[:a.heldout])]
    train = [(f"t{i:05d}", *setting(), t) for i, t in enumerate(sents[a.heldout:need])]
    obj = {"heldout": heldout, "train": train}
    write_json(out, obj)
    log(f"{len(sents)} distinct sentences; {len(train)} for training, {len(heldout)} held out")
    return obj


def wav_path(a, name):
    return os.path.join(a.work, "audio", name + ".wav")


def stage_audio(a, s):
    done = os.path.join(a.work, "audio.done")
    if os.path.exists(done):
        return
    os.makedirs(os.path.join(a.work, "audio"), exist_ok=True)
    jobs = [(t, v, sp, p, wav_path(a, n)) for n, v, sp, p, t in s["heldout"] + s["train"]
            if not os.path.exists(wav_path(a, n))]
    log(f"speaking {len(jobs)} sentences with espeak-ng")
    t0 = time.time()
    for i in range(0, len(jobs), 500):
        dc.speak_all(jobs[i:i + 500])
        log(f"  {min(i + 500, len(jobs))}/{len(jobs)} ({time.time() - t0:.0f} s)")
    open(done, "w").close()


# ---------------------------------------------------------------- units
def stage_kmeans(a, s):
    km = os.path.join(a.work, "demo_km.npy")
    if os.path.exists(km):
        return km
    names = [n for n, *_ in s["train"]]
    sample = random.Random(a.seed + 2).sample(names, min(a.km_utts, len(names)))
    man = os.path.join(a.work, "km_manifest.txt")
    with open(man, "w") as f:
        f.writelines(os.path.abspath(wav_path(a, n)) + "\n" for n in sample)
    cmd = ["mpirun", "-n", "2", "--oversubscribe", "--bind-to", "none", a.spearlabel,
           "km-fit", "--manifest", man, "--features", "mfcc", "-k", str(a.k),
           "--seed", str(a.seed), "--out", km]
    log("k-means: " + " ".join(os.path.basename(c) if c == a.spearlabel else c for c in cmd))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    subprocess.run(cmd, check=True, env=env)
    return km


def run_tokens(a, km, paths):
    """spearlabel tokens --features mfcc --dedup over paths, two processes."""
    half = (len(paths) + 1) // 2
    procs = []
    for part in (paths[:half], paths[half:]):
        listf = os.path.join(a.work, f"tokens_in_{len(procs)}.txt")
        with open(listf, "w") as f:
            f.write("\n".join(part) + "\n")
        procs.append(subprocess.Popen(
            ["xargs", "-d", "\n", "-a", listf, a.spearlabel, "tokens", "--features", "mfcc",
             "--kmeans", km, "--dedup"], stdout=subprocess.PIPE, text=True))
    out = {}
    for p in procs:
        for line in p.stdout:
            path, ids = line.rstrip("\n").split("\t")
            out[path] = [int(x) for x in ids.split()]
        if p.wait() != 0:
            sys.exit("train_demo: spearlabel tokens failed")
    return out


def stage_tokens(a, s, km):
    out = os.path.join(a.work, "tokens.json")
    if os.path.exists(out):
        return read_json(out)
    names = [n for n, *_ in s["heldout"] + s["train"]]
    paths = [wav_path(a, n) for n in names]
    log(f"tokenising {len(paths)} utterances")
    t0 = time.time()
    got = run_tokens(a, km, paths)
    toks = {n: got[p] for n, p in zip(names, paths)}
    raw = sum(os.path.getsize(p) - 44 for p in paths) / 2 / 160  # 100 frames/s
    ded = sum(len(v) for v in toks.values())
    log(f"  {time.time() - t0:.0f} s; {ded / len(toks):.0f} units per utterance, "
        f"{raw / ded:.2f}x fewer than frames")
    write_json(out, toks)
    return toks


# ---------------------------------------------------------------- model
def model_args(a):
    return {"dim": 256, "source_depth": 3, "target_depth": 3, "heads": 4, "dim_head": 64,
            "num_semantic_token_ids": a.k, "num_text_token_ids": len(dc.VOCAB),
            "attn_dropout": 0.1, "ff_dropout": 0.1}


def make_model(a, torch):
    from spear_tts_pytorch import TextToSemantic
    import spear_tts_pytorch.spear_tts_pytorch as stp
    stp.tqdm = lambda it: it  # generate() prints a bar per step otherwise
    torch.manual_seed(a.seed)
    m = TextToSemantic(**model_args(a))
    dim = m.dim
    for emb in (m.token_emb["speech"], m.token_emb["text"]):
        torch.nn.init.normal_(emb.weight, std=dim ** -0.5)
        # right-padded sources carry -1: clamp before the lookup (the mask hides them)
        emb.forward = (lambda e: lambda x: torch.nn.functional.embedding(x.clamp(min=0),
                                                                          e.weight))(emb)
    return m


def batches(items, max_tokens, rng, torch):
    """items: [(src ids, text ids)]; length-bucketed batches of about max_tokens units."""
    order = sorted(range(len(items)), key=lambda i: (len(items[i][0]), rng.random()))
    out, cur, cur_max = [], [], 0
    for i in order:
        n = len(items[i][0]) + 1
        if cur and max(cur_max, n) * (len(cur) + 1) > max_tokens:
            out.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def collate(items, idx, torch):
    S = max(len(items[i][0]) for i in idx)
    T = max(len(items[i][1]) for i in idx)
    src = torch.full((len(idx), S), -1, dtype=torch.long)
    tgt = torch.zeros((len(idx), T), dtype=torch.long)
    for r, i in enumerate(idx):
        s, t = items[i]
        src[r, :len(s)] = torch.tensor(s)
        tgt[r, :len(t)] = torch.tensor(t)
    return src, tgt


def mask_units(src, p, rng_t, torch):
    """Unit masking: a fraction p of the real source positions is replaced by random
    units (the pads stay -1)."""
    if p <= 0:
        return src
    real = src >= 0
    hit = (torch.rand(src.shape, generator=rng_t) < p) & real
    rand = torch.randint(0, int(src.max()) + 1, src.shape, generator=rng_t)
    return torch.where(hit, rand, src)


def evaluate_loss(m, items, torch, bs=64):
    m.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(items), bs):
            idx = list(range(i, min(i + bs, len(items))))
            src, tgt = collate(items, idx, torch)
            loss = m(src, tgt, source_type="speech", target_type="text", return_loss=True)
            k = int((tgt != 0).sum()) + len(idx)
            tot += float(loss) * k
            n += k
    m.train()
    return tot / n


def stage_train(a, s, toks):
    final = os.path.join(a.work, "model_final.pt")
    if os.path.exists(final):
        return final
    import torch
    torch.set_num_threads(a.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(a.threads)
    except ImportError:
        pass
    m = make_model(a, torch)
    train = [(toks[n], dc.encode(t)) for n, _, _, _, t in s["train"]]
    val = [(toks[n], dc.encode(t)) for n, _, _, _, t in s["heldout"]]
    params = [p for p in m.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98))
    ckpt = os.path.join(a.work, "ckpt.pt")
    state = {"step": 0, "elapsed": 0.0, "epoch": 0, "history": []}
    if os.path.exists(ckpt):
        pkg = torch.load(ckpt, map_location="cpu")
        m.load_state_dict(pkg["model"])
        opt.load_state_dict(pkg["optim"])
        state = pkg["state"]
        log(f"resumed at step {state['step']}, {state['elapsed'] / 60:.1f} min trained")
    # The schedule runs over wall time (--minutes) or, with --steps, over steps: the
    # same recipe on a machine of any speed. One cosine cycle at --lr, then optionally a
    # warm restart at --restart-lr (--restart-minutes / --restart-steps).
    if a.steps:
        per_s = 1 / 1.9  # steps per second here, to express the warm-ups in steps
        cycles = [(float(a.steps), a.lr, a.warmup_s * per_s)]
        if a.restart_steps:
            cycles.append((float(a.restart_steps), a.restart_lr, 60 * per_s))

        def clock():
            return float(state["step"])
    else:
        cycles = [(a.minutes * 60.0, a.lr, a.warmup_s)]
        if a.restart_minutes:
            cycles.append((a.restart_minutes * 60.0, a.restart_lr, 60.0))

        def clock():
            return state["elapsed"]

    def lr_at(t, c):
        budget, peak, warm = cycles[c]
        if t < warm:
            return peak * max(t, 1.0) / warm
        x = min(1.0, (t - warm) / max(1.0, budget - warm))
        return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * x)))

    def save(path):
        torch.save({"model": m.state_dict(), "optim": opt.state_dict(), "state": state},
                   path + ".tmp")
        os.replace(path + ".tmp", path)

    rng_t = torch.Generator().manual_seed(a.seed + state["step"])
    m.train()
    t_mark, last_save, last_val = time.time(), time.time(), time.time()
    ema = None
    state.setdefault("cycle", 0)
    state.setdefault("cycle_start", 0.0)

    def in_cycle():
        return clock() - state["cycle_start"]

    while state["cycle"] < len(cycles):
        c = state["cycle"]
        if in_cycle() >= cycles[c][0]:
            vl = evaluate_loss(m, val, torch)
            state["history"].append((state["step"], state["elapsed"], ema, vl))
            log(f"cycle {c} done at step {state['step']}; validation loss {vl:.3f}")
            state["cycle"] += 1
            state["cycle_start"] = clock()
            save(ckpt)
            t_mark = time.time()
            continue
        rng = random.Random(a.seed * 1000 + state["epoch"])
        for b, idx in enumerate(batches(train, a.batch_tokens, rng, torch)):
            if b < state.get("batch_in_epoch", 0):
                continue
            src, tgt = collate(train, idx, torch)
            src = mask_units(src, a.mask, rng_t, torch)
            for g in opt.param_groups:
                g["lr"] = lr_at(in_cycle(), c)
            loss = m(src, tgt, source_type="speech", target_type="text", return_loss=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            now = time.time()
            state["elapsed"] += now - t_mark
            t_mark = now
            state["step"] += 1
            state["batch_in_epoch"] = b + 1
            ema = float(loss) if ema is None else 0.98 * ema + 0.02 * float(loss)
            if state["step"] % 50 == 0:
                log(f"step {state['step']} epoch {state['epoch']} cycle {c} loss {ema:.3f} "
                    f"lr {lr_at(in_cycle(), c):.2e} {state['elapsed'] / 60:.1f} min")
            if now - last_val > 600:
                vl = evaluate_loss(m, val, torch)
                state["history"].append((state["step"], state["elapsed"], ema, vl))
                log(f"  validation loss {vl:.3f}")
                t_mark = last_val = time.time()
            if now - last_save > 120:
                save(ckpt)
                t_mark = last_save = time.time()
            if in_cycle() >= cycles[c][0]:
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    log(f"trained {state['step']} steps, {state['epoch']} epochs, "
        f"{state['elapsed'] / 60:.1f} min; validation loss {state['history'][-1][3]:.3f}")
    save(ckpt)
    torch.save({"model": m.state_dict(), "state": state}, final)
    return final


# ---------------------------------------------------------------- export, eval
def models_dir():
    return os.path.join(ROOT, "examples", "models")


def stage_export(a, s, km, final):
    import torch
    out = os.path.join(models_dir(), "demo_s2t.safetensors")
    pkg = torch.load(final, map_location="cpu")
    sd = {k: (v.half().float() if v.is_floating_point() and not k.endswith("rotary_emb.freqs")
              else v) for k, v in pkg["model"].items()}
    rounded = os.path.join(a.work, "model_f16.pt")
    torch.save({"model": sd}, rounded)
    args = os.path.join(a.work, "model_args.json")
    write_json(args, model_args(a))
    subprocess.run([sys.executable, os.path.join(HERE, "convert_spear.py"), rounded,
                    "--config", args, "--out", out, "--dtype", "float16"], check=True)
    shutil.copyfile(km, os.path.join(models_dir(), "demo_km.npy"))
    with open(os.path.join(models_dir(), "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(dc.VOCAB, f)
        f.write("\n")
    with open(dc.HELDOUT_TSV, "w", encoding="utf-8") as f:
        f.write("# name\tvoice\tspeed\tpitch\ttext  (tools/train_demo.py; never in training)\n")
        for row in s["heldout"]:
            f.write("\t".join(str(x) for x in row) + "\n")
    log(f"exported {out}, demo_km.npy, vocab.json, demo_heldout.tsv")
    return rounded, pkg.get("state", {})


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def stage_eval(a, s, toks, rounded, train_state):
    import torch
    torch.set_num_threads(a.threads)
    m = make_model(a, torch)
    m.load_state_dict(torch.load(rounded, map_location="cpu")["model"])
    m.eval()
    eos = len(dc.VOCAB)
    res = {"greedy": [], "beam4": []}

    def cut(row):
        out = []
        for t in row:
            if t == eos or t == 0:
                break
            out.append(t)
        return out

    t0 = time.time()
    held = s["heldout"][:a.eval_count]
    for i in range(0, len(held), 16):
        chunk = held[i:i + 16]
        idx = list(range(len(chunk)))
        src, _ = collate([(toks[n], [1]) for n, *_ in chunk], idx, torch)
        with torch.no_grad():
            g = m.generate(src, source_type="speech", target_type="text", temperature=0.0,
                           max_length=a.max_len)
        res["greedy"] += [dc.decode(cut(r.tolist())) for r in g]
    log(f"  greedy done ({time.time() - t0:.0f} s)")
    t0 = time.time()
    for n, *_ in held:
        src = torch.tensor([toks[n]])
        with torch.no_grad():
            b = m.generate(src, source_type="speech", target_type="text",
                           beam_search_decode=True, beam_size=4, max_length=a.max_len)
        res["beam4"].append(dc.decode(cut(b[0].tolist())))
    log(f"  beam 4 done ({time.time() - t0:.0f} s)")
    truth = [t for *_, t in held]
    ev = {"model": model_args(a), "k": a.k, "train_sentences": len(s["train"]),
          "train": {k: v for k, v in train_state.items() if k != "batch_in_epoch"},
          "cer_greedy": dc.cer(list(zip(res["greedy"], truth))),
          "cer_beam4_seed": dc.cer(list(zip(res["beam4"], truth))),
          "utterances": [{"id": n + ".wav", "voice": v, "speed": sp, "pitch": p, "truth": t,
                          "greedy": res["greedy"][i], "beam4_seed": res["beam4"][i],
                          "sha256": sha256(wav_path(a, n))}
                         for i, (n, v, sp, p, t) in enumerate(held)]}
    out = os.path.join(models_dir(), "demo_eval.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(ev, f, indent=1)
        f.write("\n")
    log(f"held-out CER: greedy {ev['cer_greedy']:.2f} %, beam 4 (library beam search) "
        f"{ev['cer_beam4_seed']:.2f} %  -> {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "demo-train"))
    ap.add_argument("--spearlabel", default=os.path.join(ROOT, "build", "spearlabel"))
    ap.add_argument("--minutes", type=float, default=75.0, help="training wall time")
    ap.add_argument("--steps", type=int, default=None,
                    help="train this many steps instead (the schedule runs over steps)")
    ap.add_argument("--train", type=int, default=12000, help="training sentences")
    ap.add_argument("--heldout", type=int, default=150)
    ap.add_argument("-k", type=int, default=100, help="k-means clusters")
    ap.add_argument("--km-utts", type=int, default=2500)
    ap.add_argument("--batch-tokens", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--restart-minutes", type=float, default=30.0,
                    help="a second cosine cycle (warm restart) of this many minutes (0: none)")
    ap.add_argument("--restart-steps", type=int, default=None, help="the same with --steps")
    ap.add_argument("--restart-lr", type=float, default=3e-4)
    ap.add_argument("--warmup-s", type=float, default=120.0, help="warm-up, seconds")
    ap.add_argument("--mask", type=float, default=0.05, help="unit masking probability")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--eval-count", type=int, default=None, help="evaluate the first N held-out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--until", default="eval",
                    choices=["sentences", "audio", "kmeans", "tokens", "train", "export", "eval"])
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    if not os.access(a.spearlabel, os.X_OK):
        sys.exit(f"train_demo: {a.spearlabel}: not built (cmake --build build)")
    s = stage_sentences(a)
    if a.until == "sentences":
        return 0
    stage_audio(a, s)
    if a.until == "audio":
        return 0
    km = stage_kmeans(a, s)
    if a.until == "kmeans":
        return 0
    toks = stage_tokens(a, s, km)
    if a.until == "tokens":
        return 0
    final = stage_train(a, s, toks)
    if a.until == "train":
        return 0
    rounded, st = stage_export(a, s, km, final)
    if a.until == "export":
        return 0
    stage_eval(a, s, toks, rounded, st)
    return 0


if __name__ == "__main__":
    sys.exit(main())
