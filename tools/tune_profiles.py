#!/usr/bin/env python3
"""Choose version 2's fusion and hybrid profile settings on the validation split.

``tools/train_default_models.py`` writes ``models/gift/2`` (Direct, Stage2, gift_prob, trained
on the earliest 80% of impressions) and ``models/gift/validation.csv.gz`` (the next 10%, which
no shipped model trained on). This script scores that split with the ``giftrank`` binary's
``eval`` (DESIGN.md section 7) and chooses the four constants at the top of
``train_default_models.py``: FUSION_ALPHA, HYBRID_DIRECT_M, HYBRID_PROB_M, HYBRID_ALPHA. It
never reads the held-out split (it refuses ``--data`` pointing at it): held-out numbers stay an
unbiased report of the choice.

Workflow, from the repository root::

    cargo build --release                              # giftrank with eval profiles + fusion
    python3 tools/train_default_models.py              # models/gift/2, validation.csv.gz
    python3 tools/tune_profiles.py                     # table + chosen constants
    python3 tools/tune_profiles.py --write             # ... and rewrite the four constants
    python3 tools/train_default_models.py              # rewrites only models/gift/2/bundle.toml
    python3 tools/tune_profiles.py --check             # exit 1 if constants or bundle differ

The models do not depend on the four constants (they only go into bundle.toml), so re-training
after changing them leaves the model files byte-identical and the choice stays the same.

What it runs (two ``eval`` calls, about 100,000 rows each):

1. ``giftrank eval --bundle models/gift/2 --data models/gift/validation.csv.gz
   --label gift_amount --m 200 --alpha 0,0.05,...,1 --json ...``: one ``fusion`` row per alpha
   at M = 200 (the default and fusion profiles' recall size).
2. One temporary bundle directory (symlinks to models/gift/2's model files, no canary) whose
   bundle.toml declares the default profile of models/gift/2 plus one hybrid profile per
   candidate: recall = Direct Top-dm and gift_prob Top-pm, rerank Stage2 with alpha, for dm in
   ``--direct-m`` (100,150,200), pm in ``--prob-m`` (50,100,150,200), alpha in
   ``--hybrid-alpha`` (0.5,0.6,...,1.0); named ``h_d<dm>_p<pm>_a<100 x alpha>``, e.g.
   ``h_d150_p100_a70`` (no dot: profile names stay plain TOML keys). Plus, for reference
   only, Direct-only recall-rerank profiles ``base_d<m>`` for every total quota m = dm + pm:
   they show how much of a hybrid's coverage gain gift_prob brings and how much is just a
   larger recalled set. One ``eval`` run scores each model once for all of them.
   The grid is the Stage2 budget: by default at most 200 + 200 candidates reranked per
   request, twice the default profile's.

Selection criteria (the seed's Gate-5A is "Top-1% capture >= 56% and NDCG@100 up"):

* FUSION_ALPHA: the alpha with the largest NDCG@100 (ties: the larger alpha, closer to the
  default profile's pure Stage2 rerank). Fusion reorders only Direct's Top-200, which on an
  all-rows ranking lies inside the Top-1% cut-off, so NDCG@100 is the only Gate-5A metric it
  can move.
* Hybrid: a candidate is eligible when it loses neither Gate-5A metric against the default
  profile on validation (top1 >= default's and ndcg100 >= default's). Among eligible
  candidates, lexicographically:
    1. largest top1 (Top-1% capture of the final order: the gate's failing metric);
    2. largest recall1 (the share of the true Top-1% inside the recalled set R: the seed's
       bottleneck, insight I25, and the thing hybrid recall exists to fix). Needed because on
       one ranking of all rows |R| (at most 400 here) is far below the Top-1% cut-off (1,000
       rows), so top1 barely moves and nearly every candidate ties on it;
    3. largest ndcg100;
    4. smallest total quota dm + pm (Stage2 work per request), then larger alpha, then larger
       dm.
  Metrics compare after rounding to 12 decimals, so equal rankings tie. With no eligible
  candidate it stops (exit 2) rather than ship a profile that loses to the default. A choice
  that uses the grid's largest quota is flagged: on data where NDCG@100 does not fall with a
  larger R (this synthetic data), coverage keeps growing with the quotas and the budget, not
  the constraint, is what binds.

Output: the fusion table, the top ``--top`` hybrid candidates in selection order (``*`` marks
the ineligible), and the four constants as Python lines. ``--check`` exits 1 when
train_default_models.py's constants or models/gift/2/bundle.toml's fusion and hybrid profiles
differ from the choice; ``--write`` rewrites the constants in train_default_models.py.
Exit 2: eval failed, its JSON lacks expected rows, or no hybrid candidate is eligible.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(ROOT, "tools", "train_default_models.py")
HELDOUT = os.path.join(ROOT, "models", "gift", "heldout.csv.gz")
LABEL = "gift_amount"
DIGITS = 12  # metrics compare after rounding to this many decimals
CONSTANTS = ("FUSION_ALPHA", "HYBRID_DIRECT_M", "HYBRID_PROB_M", "HYBRID_ALPHA")


class Failure(Exception):
    """A reason to stop with exit status 2."""


def train_constants():
    """DEFAULT_M, MAX_M and the four tuned constants, as train_default_models.py sets them
    (read from its source, so no LightGBM import is needed)."""
    with open(TRAIN_SCRIPT) as f:
        text = f.read()
    out = {}
    for name in CONSTANTS + ("DEFAULT_M", "MAX_M"):
        m = re.search(rf"^{name} = ([0-9.]+)\s*(#.*)?$", text, re.M)
        if not m:
            raise Failure(f"{TRAIN_SCRIPT}: no line `{name} = <number>`")
        out[name] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    return out


def parse_list(text, kind):
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of {kind.__name__}: {text}")
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    return values


def fmt_num(v):
    """A number as TOML/Python source: 0.7, 1.0, 150."""
    return repr(round(v, 6)) if isinstance(v, float) else str(v)


# ---------------------------------------------------------------- eval
def run_eval(giftrank, bundle, data, m, json_path, alphas=None):
    cmd = [giftrank, "eval", "--bundle", bundle, "--data", data, "--label", LABEL,
           "--m", str(m), "--json", json_path]
    if alphas:
        cmd += ["--alpha", ",".join(f"{a:g}" for a in alphas)]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise Failure(f"giftrank eval exited {proc.returncode}:\n{proc.stderr.strip()}")
    try:
        with open(json_path) as f:
            doc = json.load(f)
        return doc["n"], doc["methods"]
    except (OSError, ValueError, KeyError) as e:
        raise Failure(f"giftrank eval wrote no readable JSON ({json_path}): {e}")


def need(row, keys, what):
    missing = [k for k in keys if row.get(k) is None]
    if missing:
        raise Failure(f"eval row {what} lacks {', '.join(missing)} (DESIGN.md section 7): {row}")
    return row


def key(x):
    return round(float(x), DIGITS)


# ---------------------------------------------------------------- fusion
def fusion_rows(methods, m):
    rows = [need(r, ("alpha", "top1", "ndcg100"), "fusion") for r in methods
            if r.get("name") == "fusion" and r.get("m") == m]
    if not rows:
        raise Failure(f"eval JSON has no fusion rows at m = {m}: is the binary older than "
                      "DESIGN.md section 7's --alpha?")
    return rows


def pick_fusion(rows):
    """Largest NDCG@100; ties: larger alpha."""
    return max(rows, key=lambda r: (key(r["ndcg100"]), key(r["alpha"])))


def profile_row(methods, name):
    for r in methods:
        if r.get("name") == f"profile:{name}":
            return need(r, ("top1", "ndcg100"), f"profile:{name}")
    raise Failure(f"eval JSON has no row profile:{name}: is the binary older than DESIGN.md "
                  "section 7's profile rows?")


# ---------------------------------------------------------------- hybrid
def candidate_name(dm, pm, alpha):
    return f"h_d{dm}_p{pm}_a{round(alpha * 100)}"


def candidates(direct_ms, prob_ms, alphas):
    out = {}
    for dm in direct_ms:
        for pm in prob_ms:
            for a in alphas:
                name = candidate_name(dm, pm, a)
                if name in out:
                    raise Failure(f"two candidates named {name}: give alphas in steps of 0.01")
                out[name] = dict(direct_m=dm, prob_m=pm, alpha=a)
    return out


def baselines(cands):
    """The total quotas of the grid: Direct-only recall sizes to compare the hybrids with."""
    return sorted({c["direct_m"] + c["prob_m"] for c in cands.values()})


def hybrid_rows(methods, cands):
    """Candidate name -> its eval row merged with the candidate's settings."""
    rows = {}
    for name, c in cands.items():
        r = profile_row(methods, name)
        need(r, ("recall1", "recall_size"), f"profile:{name}")
        rows[name] = dict(r, cand=name, **c)
    return rows


def eligible(row, ref):
    return key(row["top1"]) >= key(ref["top1"]) and key(row["ndcg100"]) >= key(ref["ndcg100"])


def hybrid_order(row):
    """Sort key, best first: see the module docstring."""
    return (-key(row["top1"]), -key(row["recall1"]), -key(row["ndcg100"]),
            row["direct_m"] + row["prob_m"], -row["alpha"], -row["direct_m"])


def pick_hybrid(rows, ref):
    ranked = sorted(rows.values(), key=lambda r: (not eligible(r, ref), hybrid_order(r)))
    if not ranked or not eligible(ranked[0], ref):
        raise Failure("no hybrid candidate keeps both top1 and ndcg100 at or above the default "
                      f"profile's ({ref['top1']:.4f}, {ref['ndcg100']:.4f}) on validation; "
                      "widen the grid or keep the placeholders")
    return ranked[0], ranked


def toml_profile(name, p):
    lines = [f"[profiles.{name}]", f'score = "{p.get("score", "direct")}"']
    if p.get("recall"):
        src = ", ".join(f'{{ model = "{s["model"]}", m = {s["m"]} }}' for s in p["recall"])
        lines.append(f"recall = [{src}]")
    if p.get("rerank"):
        lines.append(f'rerank = "{p["rerank"]}"')
    if "alpha" in p:
        lines.append(f"alpha = {fmt_num(float(p['alpha']))}")
    if "max_m" in p:
        lines.append(f"max_m = {p['max_m']}")
    return "\n".join(lines) + "\n"


def write_candidate_bundle(src_dir, spec, cands, max_m, dst_dir):
    """dst_dir/bundle.toml: src's models (symlinked), its default profile as `default`, and one
    hybrid profile per candidate; no canary."""
    models = spec["models"]
    for role in ("direct", "stage2", "gift_prob"):
        if role not in models:
            raise Failure(f"{src_dir}/bundle.toml has no model `{role}` in [models]")
    for file in models.values():
        src = os.path.abspath(os.path.join(src_dir, file))
        try:
            os.symlink(src, os.path.join(dst_dir, file))
        except OSError:
            shutil.copyfile(src, os.path.join(dst_dir, file))
    default = spec["profiles"][spec["default_profile"]]
    parts = ['format_version = 2\ndefault_profile = "default"\n\n[models]\n'
             + "".join(f'{k} = "{v}"\n' for k, v in models.items()),
             toml_profile("default", default)]
    for m in baselines(cands):
        parts.append(toml_profile(f"base_d{m}", dict(
            score="direct", rerank="stage2", max_m=max(max_m, m), recall=[dict(model="direct", m=m)])))
    for name, c in cands.items():
        parts.append(toml_profile(name, dict(
            score="direct", rerank="stage2", alpha=float(c["alpha"]), max_m=max_m,
            recall=[dict(model="direct", m=c["direct_m"]), dict(model="gift_prob", m=c["prob_m"])])))
    with open(os.path.join(dst_dir, "bundle.toml"), "w") as f:
        f.write("\n".join(parts))


# ---------------------------------------------------------------- report
def print_table(title, rows, mark=None):
    print(f"\n{title}")
    print(f"  {'name':20s} {'|R|':>5s} {'recall1':>8s} {'recall5':>8s} {'top1':>7s} {'top5':>7s} "
          f"{'ndcg100':>8s} {'spearman':>8s}")
    for label, r in rows:
        flag = mark(r) if mark else " "
        rs = r.get("recall_size")
        rec = [format(r[k], ".2%") if r.get(k) is not None else "-" for k in ("recall1", "recall5")]
        sp = r.get("spearman")
        print(f"{flag} {label:20s} {(str(rs) if rs is not None else '-'):>5s} {rec[0]:>8s} "
              f"{rec[1]:>8s} {r['top1']:7.2%} {r['top5']:7.2%} {r['ndcg100']:8.4f} "
              f"{(format(sp, '8.4f') if sp is not None else '       -')}")


def bundle_settings(bundle_dir):
    """The fusion and hybrid settings models/gift/2/bundle.toml ships, or None."""
    try:
        with open(os.path.join(bundle_dir, "bundle.toml"), "rb") as f:
            p = tomllib.load(f)["profiles"]
        h = p["hybrid"]
        src = {s["model"]: s["m"] for s in h["recall"]}
        return dict(FUSION_ALPHA=float(p["fusion"]["alpha"]), HYBRID_DIRECT_M=src["direct"],
                    HYBRID_PROB_M=src["gift_prob"], HYBRID_ALPHA=float(h["alpha"]))
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return None


def same(a, b):
    return abs(float(a) - float(b)) < 1e-9


def write_constants(chosen):
    with open(TRAIN_SCRIPT) as f:
        text = f.read()
    for name, v in chosen.items():
        text, n = re.subn(rf"^{name} = [0-9.]+$", f"{name} = {fmt_num(v)}", text, flags=re.M)
        if n != 1:
            raise Failure(f"{TRAIN_SCRIPT}: expected one line `{name} = <number>`, found {n}")
    with open(TRAIN_SCRIPT, "w") as f:
        f.write(text)


# ---------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--giftrank", default=os.path.join(ROOT, "target", "release", "giftrank"),
                    help="the giftrank binary (default target/release/giftrank)")
    ap.add_argument("--bundle", default=os.path.join(ROOT, "models", "gift", "2"))
    ap.add_argument("--data", default=os.path.join(ROOT, "models", "gift", "validation.csv.gz"),
                    help="the validation split (never the held-out one)")
    ap.add_argument("--fusion-alpha", type=lambda t: parse_list(t, float),
                    default=[i / 20 for i in range(21)], help="default 0,0.05,...,1")
    ap.add_argument("--direct-m", type=lambda t: parse_list(t, int), default=[100, 150, 200])
    ap.add_argument("--prob-m", type=lambda t: parse_list(t, int), default=[50, 100, 150, 200])
    ap.add_argument("--hybrid-alpha", type=lambda t: parse_list(t, float),
                    default=[i / 10 for i in range(5, 11)], help="default 0.5,0.6,...,1")
    ap.add_argument("--top", type=int, default=15, help="hybrid candidates to print")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="exit 1 if train_default_models.py or models/gift/2 differ from the choice")
    mode.add_argument("--write", action="store_true",
                      help="rewrite the four constants in train_default_models.py")
    args = ap.parse_args(argv)

    try:
        return run(args)
    except Failure as e:
        print(f"tune_profiles: {e}", file=sys.stderr)
        return 2


def run(args):
    if not os.path.exists(args.data):
        raise Failure(f"{args.data} does not exist: run tools/train_default_models.py first")
    if os.path.exists(HELDOUT) and os.path.samefile(args.data, HELDOUT):
        raise Failure("refusing to tune on the held-out split; pass the validation split")
    if not (os.path.isfile(args.giftrank) and os.access(args.giftrank, os.X_OK)):
        raise Failure(f"{args.giftrank} is not an executable: cargo build --release, or --giftrank PATH")
    for a in args.fusion_alpha + args.hybrid_alpha:
        if not 0.0 <= a <= 1.0:
            raise Failure(f"alpha {a} is outside [0, 1]")
    consts = train_constants()
    m, max_m = consts["DEFAULT_M"], consts["MAX_M"]
    with open(os.path.join(args.bundle, "bundle.toml"), "rb") as f:
        spec = tomllib.load(f)
    if spec.get("format_version") != 2:
        raise Failure(f"{args.bundle}/bundle.toml is not format_version = 2")

    with tempfile.TemporaryDirectory(prefix="tune_profiles.") as tmp:
        # 1. fusion alpha, on the bundle itself
        n, methods = run_eval(args.giftrank, args.bundle, args.data, m,
                              os.path.join(tmp, "fusion.json"), args.fusion_alpha)
        frows = fusion_rows(methods, m)
        best_f = pick_fusion(frows)
        ref1 = profile_row(methods, spec["default_profile"])
        direct = next((r for r in methods if r.get("name") == "direct"), None)

        # 2. hybrid candidates, all in one bundle
        cands = candidates(args.direct_m, args.prob_m, args.hybrid_alpha)
        cdir = os.path.join(tmp, "candidates")
        os.mkdir(cdir)
        write_candidate_bundle(args.bundle, spec, cands, max_m, cdir)
        n2, methods2 = run_eval(args.giftrank, cdir, args.data, m, os.path.join(tmp, "hybrid.json"))
        ref = profile_row(methods2, "default")
        rows = hybrid_rows(methods2, cands)
        base_methods = methods2

    if n2 != n:
        raise Failure(f"the two eval runs saw {n} and {n2} rows")
    if key(ref["ndcg100"]) != key(ref1["ndcg100"]) or key(ref["top1"]) != key(ref1["top1"]):
        raise Failure("the candidate bundle's default profile scored differently from "
                      f"{args.bundle}'s: {ref} vs {ref1}")
    best_h, ranked = pick_hybrid(rows, ref)

    print(f"validation: {args.data} (N = {n})")
    print(f"\nfusion at M = {m} (Direct Top-{m}, key alpha x Stage2 + (1 - alpha) x Direct, min-max over R);"
          " choice: largest ndcg100, ties larger alpha")
    print(f"  {'alpha':>6s} {'top1':>7s} {'top5':>7s} {'ndcg100':>8s}")
    for r in sorted(frows, key=lambda r: r["alpha"]):
        print(f"{'>' if r is best_f else ' '} {r['alpha']:6.2f} {r['top1']:7.2%} {r['top5']:7.2%} "
              f"{r['ndcg100']:8.4f}")

    refs = ([("direct", direct)] if direct else []) + [("profile:default", ref)]
    refs += [(f"base_d{m}", need(profile_row(base_methods, f"base_d{m}"), ("recall1",), f"base_d{m}"))
             for m in baselines(cands)]
    print_table("reference rows (base_d<m>: Direct-only recall of Top-m, Stage2 rerank: "
                "the coverage a hybrid's budget buys without gift_prob)", refs)
    n_ok = sum(eligible(r, ref) for r in rows.values())
    print_table(f"hybrid candidates, best first ({n_ok} of {len(rows)} eligible: top1 and ndcg100 "
                "at or above profile:default's; * = not eligible)",
                [(r["cand"], r) for r in ranked[: args.top]],
                mark=lambda r: " " if eligible(r, ref) else "*")
    edge = []
    if best_h["direct_m"] == max(args.direct_m) and len(args.direct_m) > 1:
        edge.append("largest --direct-m")
    if best_h["prob_m"] == max(args.prob_m) and len(args.prob_m) > 1:
        edge.append("largest --prob-m")
    if edge:
        print(f"\nnote: the choice uses the grid's {' and '.join(edge)}: the Stage2 budget binds, "
              "not the NDCG@100 constraint (widen the grid only if the budget may grow)")

    chosen = dict(FUSION_ALPHA=round(float(best_f["alpha"]), 6), HYBRID_DIRECT_M=best_h["direct_m"],
                  HYBRID_PROB_M=best_h["prob_m"], HYBRID_ALPHA=round(float(best_h["alpha"]), 6))
    print(f"\nchosen: fusion alpha {chosen['FUSION_ALPHA']} (ndcg100 {best_f['ndcg100']:.4f} vs "
          f"default {ref['ndcg100']:.4f}); hybrid {best_h['cand']} (|R| {best_h['recall_size']}, "
          f"recall1 {best_h['recall1']:.2%} vs default {ref.get('recall1', float('nan')):.2%}, "
          f"top1 {best_h['top1']:.2%} vs {ref['top1']:.2%}, ndcg100 {best_h['ndcg100']:.4f} vs "
          f"{ref['ndcg100']:.4f})")
    print("\n# tools/train_default_models.py")
    for k, v in chosen.items():
        print(f"{k} = {fmt_num(v)}")

    if args.write:
        write_constants(chosen)
        print(f"\nwrote the constants into {TRAIN_SCRIPT}; now run it to rewrite models/gift/2/bundle.toml")
    if args.check:
        bad = [f"train_default_models.py {k} = {fmt_num(consts[k])}, chosen {fmt_num(v)}"
               for k, v in chosen.items() if not same(consts[k], v)]
        shipped = bundle_settings(args.bundle)
        if shipped is None:
            bad.append(f"{args.bundle}/bundle.toml has no readable fusion/hybrid profiles")
        else:
            bad += [f"{args.bundle}/bundle.toml {k} = {fmt_num(shipped[k])}, chosen {fmt_num(v)}"
                    for k, v in chosen.items() if not same(shipped[k], v)]
        if bad:
            print("\ncheck FAILED:\n  " + "\n  ".join(bad))
            return 1
        print("\ncheck ok: train_default_models.py and the shipped bundle match the choice")
    return 0


if __name__ == "__main__":
    sys.exit(main())
