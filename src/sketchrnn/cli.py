"""The ``sketchrnn`` command line.

Every verb turns user mistakes into one line on stderr (``sketchrnn: error: ...``) and
exit status 2; outputs are written atomically, so a failed command leaves no half-written
file behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import DataError, SketchRNNError

__all__ = ["main", "build_parser"]

_VERBS: dict[str, Callable[[argparse.Namespace], int]] = {}


def verb(name: str):
    def deco(fn):
        _VERBS[name] = fn
        return fn

    return deco


def _set_threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


def read_sketches(path: str, split: str = "test", limit: int | None = None):
    """Stroke-3 sketches from an .npz (one split), a QuickDraw .ndjson, an .svg or JSON strokes."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"input file {p} not found")
    name = p.name.lower()
    if name.endswith(".npz"):
        from .data import load_npz

        sk = load_npz(p, splits=[split])[split]
    elif name.endswith(".ndjson"):
        from .data.quickdraw import read_ndjson

        sk = [d.stroke3 for d in read_ndjson(p)]
    elif name.endswith(".svg") or name.endswith(".json"):
        try:
            from .data.io import read_strokes_file
        except ImportError:
            raise DataError(f"{p}: reading {p.suffix} files is not available in this build") from None
        sk = read_strokes_file(p)
    else:
        raise DataError(f"{p}: unknown input type (use .npz, .ndjson, .svg or .json)")
    if limit:
        sk = sk[:limit]
    return sk


# --------------------------------------------------------------------------- train
@verb("train")
def cmd_train(a: argparse.Namespace) -> int:
    from .config import Config, apply_overrides, load_config
    from .train import Trainer

    cfg = load_config(a.config) if a.config else Config()
    overrides = list(a.set or [])
    if a.data:
        overrides.append("data.paths=" + ",".join(a.data))
    if a.device:
        overrides.append(f"train.device={a.device}")
    if a.steps is not None:
        overrides.append(f"train.num_steps={a.steps}")
    if a.max_minutes is not None:
        overrides.append(f"train.max_minutes={a.max_minutes}")
    if a.threads is not None:
        overrides.append(f"train.num_threads={a.threads}")
    cfg = apply_overrides(cfg, overrides)
    out = a.out
    tmp = None
    if a.dry_run:
        # A tiny end-to-end run: small model, 2 steps, one validation, one checkpoint.
        tmp = tempfile.TemporaryDirectory(prefix="sketchrnn-dry-run-")
        if not cfg.data.paths:
            from .data.synthetic import write_synthetic_npz

            synth = Path(tmp.name) / "shapes.npz"
            write_synthetic_npz(synth, 64, 16, 16, seed=0)
            cfg.data.paths = [str(synth)]
        cfg = apply_overrides(cfg, ["model.enc_rnn_size=16", "model.dec_rnn_size=32", "model.z_size=8",
                                    "model.num_mixture=3", "model.hyper_rnn_size=16", "model.hyper_embedding_size=4",
                                    "train.batch_size=8", "train.num_steps=2", "train.eval_every=2",
                                    "train.save_every=2", "train.log_every=1", "train.max_eval_sketches=16"])
        out = out or str(Path(tmp.name) / "run")
    if not out:
        raise DataError("train: give --out DIR for the run directory (checkpoints, metrics, config)")
    trainer = Trainer(cfg, out, resume=a.resume, argv=sys.argv, progress=not a.no_progress, new_data=a.new_data)
    res = trainer.fit()
    if trainer.is_main:  # under torchrun only rank 0 reports
        print(json.dumps({"run_dir": str(out), "scale_factor": trainer.scale_factor,
                          "n_train": len(trainer.train_data), "n_dropped_train": trainer.train_data.n_dropped,
                          **{k: v for k, v in res.items()}}, default=float))
    if tmp is not None:
        tmp.cleanup()
    return 0


# --------------------------------------------------------------------------- evaluate
@verb("evaluate")
def cmd_evaluate(a: argparse.Namespace) -> int:
    from .checkpoint import load_model
    from .evaluate import evaluate_model

    _set_threads(a.threads)
    lm = load_model(a.model, device=a.device)
    sk = read_sketches(a.data, a.split, a.limit)
    res = evaluate_model(lm, sk, batch_size=a.batch_size, seed=a.seed, device=a.device, iwae=a.iwae)
    _print_record(res, a.json, lambda v: v if v is None or isinstance(v, int) else f"{v:.4f}")
    return 0


def _print_record(rec: dict, as_json: bool, fmt: Callable[[Any], Any] = str) -> None:
    """One JSON object, or one aligned ``key: value`` line per entry."""
    if as_json:
        print(json.dumps(rec))
        return
    width = max(map(len, rec), default=0)
    for k, v in rec.items():
        print(f"{k:>{width}}: {fmt(v)}")


# --------------------------------------------------------------------------- sample
@verb("sample")
def cmd_sample(a: argparse.Namespace) -> int:
    from .api import sample
    from .checkpoint import load_model
    from .data import save_npz
    from .render import grid_svg, save_svg, stroke3_to_svg

    _set_threads(a.threads)
    lm = load_model(a.model, device=a.device)
    cls = a.class_id
    if cls is not None and cls.isdigit():
        cls = int(cls)
    sketches = sample(lm, n=a.n, temperature=a.temperature, greedy=a.greedy, seed=a.seed,
                      temperature_mode=a.temperature_mode, class_id=cls)
    out = Path(a.out)
    if out.suffix.lower() in (".svg", ".png"):  # one grid image (+ the strokes beside it)
        if out.suffix.lower() == ".png":
            from .render import grid_image, save_png

            save_png(out, grid_image(sketches, ncols=min(len(sketches), 8)))
        else:
            save_svg(out, grid_svg(sketches, ncols=min(len(sketches), 8)))
        save_npz(out.with_suffix(".npz"), {"test": sketches})
        written = [str(out), str(out.with_suffix(".npz"))]
    else:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for i, s in enumerate(sketches):
            save_svg(out / f"sample_{i:04d}.svg", stroke3_to_svg(s))
            written.append(str(out / f"sample_{i:04d}.svg"))
        save_npz(out / "samples.npz", {"test": sketches})
        written.append(str(out / "samples.npz"))
        if a.png:
            from .render import grid_image, save_png

            save_png(out / "samples.png", grid_image(sketches, ncols=min(len(sketches), 8)))
            written.append(str(out / "samples.png"))
    print(f"wrote {len(sketches)} sketches: {', '.join(written[:3])}{' ...' if len(written) > 3 else ''}")
    return 0


# --------------------------------------------------------------------------- render
@verb("render")
def cmd_render(a: argparse.Namespace) -> int:
    from .render import grid_image, grid_svg, save_png, save_svg, stroke3_to_svg

    sk = read_sketches(a.file, a.split, a.limit)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(sk):
        save_svg(out / f"{i:04d}.svg", stroke3_to_svg(s))
    save_svg(out / "grid.svg", grid_svg(sk, ncols=min(len(sk), 10)))
    if a.png:
        save_png(out / "grid.png", grid_image(sk, ncols=min(len(sk), 10)))
    print(f"rendered {len(sk)} sketches into {out}")
    return 0


# --------------------------------------------------------------------------- magenta
@verb("import-magenta")
def cmd_import_magenta(a: argparse.Namespace) -> int:
    from .checkpoint import save_weights
    from .interop.magenta import load_magenta

    lm = load_magenta(a.file)
    out = Path(a.out)
    if out.suffix != ".safetensors":
        out = out.with_suffix(".safetensors")
    save_weights(out, lm.model, lm.config, lm.scale_factor, lm.class_names or [lm.name], half=False,
                 extra={"source": f"magenta:{Path(a.file).name}"})
    print(f"wrote {out} (decoder-only LSTM {lm.config.dec_rnn_size}, scale_factor {lm.scale_factor})")
    return 0


@verb("export-magenta")
def cmd_export_magenta(a: argparse.Namespace) -> int:
    from .checkpoint import load_model
    from .interop.magenta import export_magenta

    lm = load_model(a.model)
    calibration = None
    if a.calibrate:
        from .data import load_npz

        calibration = load_npz(a.calibrate, splits=["train"])["train"][: a.n_calibration]
    export_magenta(lm, a.out, name=a.name, rounding=a.rounding, calibration=calibration, n_calibration=a.n_calibration)
    print(f"wrote {a.out} ({a.rounding} rounding to the format's int16 grid)")
    return 0


@verb("export")
def cmd_export(a: argparse.Namespace) -> int:
    """Checkpoint -> compact .safetensors (float16 by default) for shipping or sharing."""
    from .checkpoint import load_model, save_weights
    from .config import Config

    lm = load_model(a.model)
    out = Path(a.out)
    if out.suffix != ".safetensors":
        raise DataError(f"export: --out {out} must end in .safetensors")
    save_weights(out, lm.model, Config(model=lm.config), lm.scale_factor, lm.class_names, half=not a.float32,
                 extra={"source": Path(lm.source).name, **{k: str(lm.info[k]) for k in ("step", "weights") if k in lm.info}})
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {'float32' if a.float32 else 'float16, mixture head float32'})")
    return 0


@verb("compact-checkpoint")
def cmd_compact_checkpoint(a: argparse.Namespace) -> int:
    """A run's last.pt -> the most complete resume checkpoint under --max-mb (for git)."""
    from .checkpoint import compact_for_resume, read_checkpoint, save_checkpoint

    if not a.max_mb > 0:
        raise DataError(f"compact-checkpoint: --max-mb must be > 0, got {a.max_mb}")
    ck = read_checkpoint(a.checkpoint)
    payload, mode, size = compact_for_resume(ck, int(a.max_mb * 2**20))
    save_checkpoint(a.out, payload)
    print(json.dumps({"out": str(a.out), "resume_mode": mode, "bytes": size, "step": int(ck["step"])}))
    return 0


@verb("widen-encoder")
def cmd_widen_encoder(a: argparse.Namespace) -> int:
    """A VAE run's last.pt -> a resume checkpoint whose encoder is wider and computes the same mu, sigma."""
    import dataclasses

    from .checkpoint import _with_resume_mode, config_from_json, read_checkpoint, save_checkpoint
    from .errors import ConfigError
    from .model.widen import widen_encoder_state

    ck = read_checkpoint(a.checkpoint)
    cfg = config_from_json(ck["config"], str(a.checkpoint))
    if not cfg.model.conditional or cfg.model.enc_model != "lstm":
        raise ConfigError(f"widen-encoder: {a.checkpoint} is not a VAE with a plain LSTM encoder "
                          f"(conditional={cfg.model.conditional}, enc_model={cfg.model.enc_model})")
    # the optimiser's moments do not fit the new shapes: keep the weight average (or the weights) only
    mode = "average-only" if isinstance(ck.get("ema"), dict) or ck.get("resume_mode") == "average-only" else "weights-only"
    old = cfg.model.enc_rnn_size
    c = _with_resume_mode(ck, mode) if mode != ck.get("resume_mode") else dict(ck)
    c["model"] = widen_encoder_state(c["model"], old, a.enc_rnn_size, seed=a.seed)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, enc_rnn_size=a.enc_rnn_size))
    c["config"] = cfg.to_json()
    save_checkpoint(a.out, c)
    print(json.dumps({"out": str(a.out), "resume_mode": mode, "step": int(ck["step"]),
                      "enc_rnn_size": [old, a.enc_rnn_size]}))
    return 0


@verb("models")
def cmd_models(a: argparse.Namespace) -> int:
    """List the models shipped inside the package (usable as --model NAME)."""
    from .checkpoint import load_model, shipped_models, shipped_quality, weights_dir

    names = shipped_models()
    if not names:
        print("no models are shipped in this installation")
    for name in names:
        lm = load_model(name)
        c = lm.config
        kind = "VAE" if c.conditional else "decoder-only"
        quality = "; ".join(f"{r['metric'].split(' (')[0]} {r['gap_percent']:+.1f} % vs teacher "
                            f"({'meets' if r['meets'] else 'short of'} the {r['bar_percent']:g} % bar)"
                            for r in shipped_quality(name)) or "no test figures"
        print(f"{name:<16} {kind:<12} {c.dec_model} {c.dec_rnn_size}  classes={','.join(lm.class_names)}  "
              f"{quality}  card: {weights_dir() / (name + '.md')}")
    return 0


# --------------------------------------------------------------------------- info
@verb("info")
def cmd_info(a: argparse.Namespace) -> int:
    """What this installation runs on: versions, devices, the sampler in use, shipped models."""
    import platform

    import numpy as np
    import torch

    from . import __version__
    from .checkpoint import shipped_models
    from .fast import native
    from .precision import cpu_bf16_available

    cuda = torch.cuda.is_available()
    info = {
        "sketchrnn": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "cpu_sampler": "native C kernel" if native.available() else "numpy",
        "cpu_train_lstm": "native C step kernels" if native.available() else "torch operations",
        "cpu_bf16_products": ("available (train.matmul_precision=medium uses them)" if cpu_bf16_available()
                              else "not available (needs AVX512-BF16 or AMX and torch >= 2.9)"),
        "native_status": native.status(),
        "native_cache": str(native.cache_dir()),
        "shipped_models": shipped_models(),
    }
    _print_record(info, a.json, lambda v: (", ".join(v) or "none") if isinstance(v, list) else v)
    return 0


# --------------------------------------------------------------------------- demo
@verb("demo")
def cmd_demo(a: argparse.Namespace) -> int:
    """Zero-download demo: make a small shapes dataset, train a small model, sample, render."""
    from .api import sample
    from .checkpoint import load_model
    from .config import Config, apply_overrides
    from .data.synthetic import write_synthetic_npz
    from .render import grid_image, save_png
    from .train import Trainer

    _set_threads(a.threads or 2)
    out = Path(a.out)
    data = out / "shapes.npz"
    write_synthetic_npz(data, 2000, 200, 200, seed=0)
    cfg = apply_overrides(Config(), [f"data.paths={data}", "model.enc_rnn_size=64", "model.dec_rnn_size=128",
                                     "model.z_size=16", "model.num_mixture=5", "model.max_seq_len=64",
                                     "train.batch_size=50", f"train.num_steps={a.steps}", "train.eval_every=100",
                                     "train.save_every=100", "train.kl_weight_start=0.5", "train.kl_decay_rate=0.99",
                                     "train.learning_rate=3e-3", "train.decay_rate=0.999"])
    res = Trainer(cfg, out / "run", resume=(out / "run" / "last.pt").exists(), argv=sys.argv).fit()
    lm = load_model(out / "run" / "best.pt")
    sk = sample(lm, n=16, temperature=0.4, seed=0)
    save_png(out / "samples.png", grid_image(sk, ncols=8))
    print(json.dumps({"run_dir": str(out / "run"), "best_valid": res["best_valid"], "samples": str(out / "samples.png")}))
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sketchrnn", description="sketch-rnn: train, evaluate and draw with pen-stroke models")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def add_model_args(sp, threads=True):
        sp.add_argument("--model", required=True, help="checkpoint (.pt), weights (.safetensors), Magenta .gen.json, or shipped name")
        sp.add_argument("--device", default="cpu", help="cpu (default) or cuda")
        if threads:
            sp.add_argument("--threads", type=int, default=None, help="torch CPU threads")

    t = sub.add_parser("train", help="train a model (Magenta's defaults; see configs/)")
    t.add_argument("--config", help="JSON config file (configs/*.json)")
    t.add_argument("--data", nargs="+", help="sketch-rnn .npz file(s); several = multi-class")
    t.add_argument("--out", help="run directory (checkpoints, metrics.csv, config.json)")
    t.add_argument("--set", nargs="*", metavar="SECTION.KEY=VALUE", help="config overrides, e.g. model.dec_model=hyper")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt exactly")
    t.add_argument("--new-data", action="store_true",
                   help="with --resume: go on with other training data (fresh data order; weights, optimiser, "
                        "step and scale factor kept)")
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    t.add_argument("--steps", type=int, help="total optimiser steps (train.num_steps)")
    t.add_argument("--max-minutes", type=float, help="stop with a checkpoint after this many minutes")
    t.add_argument("--threads", type=int, help="torch CPU threads (train.num_threads)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--dry-run", action="store_true", help="tiny 2-step run (synthetic data unless --data) to check the setup")

    e = sub.add_parser("evaluate", help="nll_per_point and Magenta's L_R / L_KL on a data split")
    add_model_args(e)
    e.add_argument("--data", required=True, help=".npz (uses --split) or QuickDraw .ndjson")
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=int, default=None, help="first N sketches only")
    e.add_argument("--batch-size", type=int, default=100)
    e.add_argument("--seed", type=int, default=0, help="seed of the z sample in elbo_per_point")
    e.add_argument("--iwae", type=int, default=0, metavar="K",
                   help="VAEs: also iwae_nll_per_point, the importance-weighted bound on the NLL with K z samples "
                        "per sketch (Burda et al. 2016; tighter than the ELBO; K decoder passes; 0 = off)")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    s = sub.add_parser("sample", help="draw sketches from a model")
    add_model_args(s)
    s.add_argument("--n", type=int, default=8)
    s.add_argument("--temperature", type=float, default=0.5)
    s.add_argument("--temperature-mode", default="paper", choices=["paper", "magenta_py", "magenta_js"],
                   help="paper: sigma*sqrt(tau) (default); magenta_py: sigma*tau; magenta_js: @magenta/sketch")
    s.add_argument("--greedy", action="store_true", help="most likely offset and pen at each step")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--out", required=True, help="folder (one SVG per sketch + samples.npz) or FILE.svg / FILE.png (grid)")
    s.add_argument("--png", action="store_true", help="also write samples.png (folder output)")
    s.add_argument("--class", dest="class_id", default=None, help="class name or index (class-conditional models)")

    r = sub.add_parser("render", help="render sketches of a file to SVG/PNG")
    r.add_argument("file", help=".npz, .ndjson, .svg or .json strokes")
    r.add_argument("--out", required=True)
    r.add_argument("--split", default="test")
    r.add_argument("--limit", type=int, default=100)
    r.add_argument("--png", action="store_true")

    im = sub.add_parser("import-magenta", help="convert a @magenta/sketch .gen.json model to .safetensors")
    im.add_argument("file")
    im.add_argument("--out", required=True)

    ex = sub.add_parser("export-magenta", help="write a decoder-only LSTM model as @magenta/sketch JSON")
    ex.add_argument("model")
    ex.add_argument("--out", required=True)
    ex.add_argument("--name", default=None)
    ex.add_argument("--rounding", choices=["compensated", "nearest"], default="compensated",
                    help="compensated (default): error-compensating rounding onto the int16 grid (GPTQ), "
                         "keeps the model's precision; nearest: each weight to its nearest grid point")
    ex.add_argument("--calibrate", metavar="DATA.npz", default=None,
                    help="calibration sketches for compensated rounding (its train split; default: the model's own samples)")
    ex.add_argument("--n-calibration", type=int, default=200, help="calibration sketches (default 200)")

    cc = sub.add_parser("compact-checkpoint", help="shrink a training checkpoint for resuming elsewhere: full state, "
                        "else Adam's second moments only (bfloat16), else weights only, else the weight average only; "
                        "float32 weights always")
    cc.add_argument("checkpoint", help="a run's last.pt (forms, most complete first: full, no-first-moment, "
                    "weights-only, average-only: the weight average as the weights, for runs with train.ema_decay)")
    cc.add_argument("--out", required=True, help="the compact resume checkpoint (.pt)")
    cc.add_argument("--max-mb", type=float, default=16.0, help="size limit in MiB (default 16)")
    we = sub.add_parser("widen-encoder", help="grow a VAE checkpoint's encoder (more LSTM units per direction) "
                        "without changing what it computes; resume training with --set model.enc_rnn_size=N")
    we.add_argument("checkpoint", help="a run's last.pt (or a compact one)")
    we.add_argument("--enc-rnn-size", type=int, required=True, help="units per direction after widening")
    we.add_argument("--out", required=True, help="the widened resume checkpoint (.pt), weights or weight average only")
    we.add_argument("--seed", type=int, default=0, help="seed of the new units' initial weights")
    xp = sub.add_parser("export", help="write a checkpoint's weights as .safetensors (float16 but the mixture head by default)")
    xp.add_argument("model", help="checkpoint (.pt) or weights")
    xp.add_argument("--out", required=True, help="FILE.safetensors")
    xp.add_argument("--float32", action="store_true", help="keep float32 weights")

    sub.add_parser("models", help="list the models shipped in the package")
    inf = sub.add_parser("info", help="versions, devices, the CPU sampler in use (native C kernel or why not)")
    inf.add_argument("--json", action="store_true", help="print one JSON object")

    d = sub.add_parser("demo", help="no-download demo: synthetic shapes -> small model -> samples.png")
    d.add_argument("--out", default="demo_out")
    d.add_argument("--steps", type=int, default=600)
    d.add_argument("--threads", type=int, default=None)

    for hook in _EXTRA_PARSERS:
        hook(sub)
    return p


# Other modules (studio, creative tools, pack) register verbs here.
_EXTRA_PARSERS: list[Callable] = []


def _load_extensions() -> None:
    for mod in ("sketchrnn.creative_cli", "sketchrnn.studio.cli", "sketchrnn.distributed_cli"):
        try:
            __import__(mod)
        except ImportError as e:
            if getattr(e, "name", None) != mod:
                raise


def main(argv: list[str] | None = None) -> int:
    _load_extensions()
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return _VERBS[a.verb](a)
    except SketchRNNError as e:
        print(f"sketchrnn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sketchrnn: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"sketchrnn: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run through the package module so verbs registered by extensions land in the same registry.
    from sketchrnn.cli import main as _main

    sys.exit(_main())
