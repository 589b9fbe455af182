"""AJAHR's dual pose tokenizer measured: reconstruction, dual vs unified codebook, token counts and
codebook sizes, HKMR's guess projected through it, its use as a prior, speed.

    python benchmarks/bench_tokenizer.py train [--steps 2000]   # the equal-budget ablation tokenizers (cache)
    python benchmarks/bench_tokenizer.py measure [--count 2000]

Everything is measured on the held-out CMU ``test`` split (other sequences, and washing windows,
an action absent from training), posed on Anny:

*reconstruction*: every 2nd test frame, intact and with 1-3 limbs collapsed (a fixed draw: limbs
and levels uniform), through encode -> nearest codes -> decode; MPJPE / PA-MPJPE (mm) of the
core joints still on the body (Anny's neutral body, root at rest, pelvis-centred; collapsed
joints left out), for each codebook used alone and for the switched pair (the paper's Tab. 4(e));
then the equal-budget ablation tokenizers (one unified codebook each: token counts as Tab. 4(d)
and Tab. C, codebook sizes as Tab. C).
*hkmr*: ``--count`` synthetic MediaPipe-like landmark sets of test poses on random Anny bodies
(:mod:`hmrkit.data.synth_keypoints`, the default noise model); half the people get 1-3 absent
limbs, and the landmarks of their absent parts are hallucinated as MediaPipe does on amputees:
where the intact pose puts them, plus the noise of a guessed landmark (std 0.1 of the person
box), reported as seen. HKMR's guess (shipped weights), then the same guess with joints 1..21
projected through the tokenizer: the switched pair (true limb labels), the amputated codebook
for everyone, the intact codebook for everyone (without the limb mask: a tokenizer that does not
know about amputation). Errors on the collapsed bodies (true limb labels, predicted phenotypes),
core joints still on the body, pelvis-centred.
*prior*: true test poses with Gaussian rotation noise per joint, projected (intact codebook) or
passed through the VAE pose prior's decode(mu), vs left noisy; the token energy's ranking of
clean vs noisy poses (AUC).
*speed*: ``project`` for one person and for 8 (under ``torch.inference_mode``), one thread, median of 200 calls.
Results: benchmarks/results/tokenizer.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import torch

from bench_common import RESULTS, ROOT, machine, write  # the script's own folder

sys.path.insert(0, str(ROOT))

from hmrkit.body.amputation import absent_joints, absent_keypoints  # noqa: E402
from hmrkit.body.anny_keypoints import anny_keypoint_map  # noqa: E402
from hmrkit.body.anny_model import load_anny_body  # noqa: E402
from hmrkit.body.anny_rig import NUM_BODY_CORE  # noqa: E402
from hmrkit.body.conventions import MEDIAPIPE33  # noqa: E402
from hmrkit.body.keypoints import keypoint_owners  # noqa: E402
from hmrkit.body.limbs import LIMBS, LimbState, LimbStatus, levels  # noqa: E402
from hmrkit.data.synth_keypoints import SynthConfig, SynthKeypoints  # noqa: E402
from hmrkit.estimators import load_regressor  # noqa: E402
from hmrkit.eval.metrics import mpjpe, pa_mpjpe  # noqa: E402
from hmrkit.models.encoders import BodyKeypoints  # noqa: E402
from hmrkit.models.pose_prior import load_pose_prior  # noqa: E402
from hmrkit.models.pose_tokenizer import (  # noqa: E402
    PoseTokenizer,
    PoseVQVAE,
    free_joints_of_classes,
    load_pose_tokenizer,
    save_pose_tokenizer,
)
from hmrkit.paths import cache_dir, weights_dir  # noqa: E402
from hmrkit.train.tokenizer import TrainConfig, held_out_poses, random_limb_classes, train  # noqa: E402

ABLATION_DIR = cache_dir() / "tokenizer_ablations"
# equal-budget unified tokenizers: name -> (tokens, codebook size); "t16_m512" is the shipped shape
ABLATIONS: dict[str, tuple[int, int]] = {
    "t4_m512": (4, 512), "t8_m512": (8, 512), "t16_m512": (16, 512), "t32_m512": (32, 512),
    "t16_m128": (16, 128), "t16_m2048": (16, 2048),
}
GUESS_SCALE = SynthConfig().guess_scale  # std of a hallucinated landmark's offset, share of the person box


def train_ablations(args) -> None:
    for name, (tokens, size) in ABLATIONS.items():
        out = ABLATION_DIR / f"{name}_s{args.steps}.safetensors"
        if out.exists() and not args.force:
            print(f"{name}: {out} exists, skipped")
            continue
        cfg = TrainConfig(steps=args.steps, tokens=tokens, codebook_size=size, unified_only=True, val_every=args.steps // 2, record="",
                          checkpoint_every=args.steps, run_dir=str(ABLATION_DIR / f"run_{name}_s{args.steps}"), out=str(out))
        model, summary = train(cfg)
        save_pose_tokenizer(model, out, {"steps": str(args.steps), "seconds": f"{summary['seconds']:.0f}", "unified_only": "True"})


# -- helpers -------------------------------------------------------------------------------------


def full_pose(body, core: torch.Tensor) -> torch.Tensor:
    """(B, 22, 3, 3) -> (B, body joints, 3, 3), fingers at rest."""
    full = torch.eye(3).expand(core.shape[0], body.num_joints, 3, 3).clone()
    full[:, :NUM_BODY_CORE] = core
    return full


def class_tables(body) -> tuple[torch.Tensor, torch.Tensor]:
    """Per limb and class (4, 4, ...): the joint the body layer collapses (J,) and the core joints
    it removes, strictly below the collapse (22,). Class 0 (present) marks nothing."""
    collapse = torch.zeros(len(LIMBS), 4, body.num_joints, dtype=torch.bool)
    removed = torch.zeros(len(LIMBS), 4, NUM_BODY_CORE, dtype=torch.bool)
    for i, limb in enumerate(LIMBS):
        for c, level in enumerate(levels(limb), start=1):
            loss = LimbState(limb, level).loss
            collapse[i, c, body.skeleton.index(loss.joint)] = True
            gone = [body.skeleton.index(n) for n in absent_joints(body.skeleton, [loss])]
            removed[i, c, [g for g in gone if g < NUM_BODY_CORE]] = True
    return collapse, removed


def per_person(table: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """(4, 4, K) table and (B, 4) limb classes -> (B, K): marked by any of the person's limbs."""
    return table[torch.arange(len(LIMBS)), classes].any(dim=1)


def limb_geometry(body, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, J) joint scales (0 at each collapse joint: the body layer's amputation) and (B, 22) removed core joints."""
    collapse, removed = class_tables(body)
    return (~per_person(collapse, classes)).float(), per_person(removed, classes)


@torch.no_grad()
def core_joints(body, core: torch.Tensor, shape: torch.Tensor | None, scales: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """(B, 22, 3) pelvis-centred core joints of the (collapsed) Anny bodies."""
    parts = []
    for s in range(0, core.shape[0], chunk):
        part = slice(s, s + chunk)
        out = body(full_pose(body, core[part]), None if shape is None else shape[part], with_vertices=False, scales=scales[part])
        j = out.joints[:, :NUM_BODY_CORE]
        parts.append(j - j[:, :1])
    return torch.cat(parts)


def errors(pred: torch.Tensor, gt: torch.Tensor, kept: torch.Tensor, rows: torch.Tensor) -> dict[str, float]:
    """Mean MPJPE / PA-MPJPE (mm) over the samples ``rows`` (bool), on the ``kept`` joints."""
    p, g, k = pred[rows], gt[rows], kept[rows]
    return {"mpjpe": round(float(mpjpe(p, g, k).mean()) * 1000, 1), "pa_mpjpe": round(float(pa_mpjpe(p, g, k).mean()) * 1000, 1),
            "people": int(rows.sum())}


@torch.no_grad()
def run_part(model: PoseVQVAE, body21: torch.Tensor, free: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded joints 1..21 (free joints kept from the input) and the token indices."""
    rots, idx = [], []
    for s in range(0, body21.shape[0], chunk):
        out = model(body21[s:s + chunk], free[s:s + chunk])
        rots.append(torch.where(free[s:s + chunk, :, None, None], body21[s:s + chunk], out.rotations))
        idx.append(out.indices)
    return torch.cat(rots), torch.cat(idx)


def with_body(core: torch.Tensor, body21: torch.Tensor) -> torch.Tensor:
    return torch.cat([core[:, :1], body21], dim=1)


# -- reconstruction ------------------------------------------------------------------------------


def reconstruction(body, tokenizer: PoseTokenizer) -> dict:
    test = held_out_poses(2)  # (N, 21, 3, 3)
    n = test.shape[0]
    core = with_body(torch.eye(3).expand(n, 1, 3, 3), test)
    classes = random_limb_classes(n, 1.0, torch.Generator().manual_seed(11))
    free = free_joints_of_classes(classes)
    none = torch.zeros_like(free)
    amp_scales, removed = limb_geometry(body, classes)
    intact_scales = torch.ones(n, body.num_joints)
    gt_intact = core_joints(body, core, None, intact_scales)
    gt_amp = core_joints(body, core, None, amp_scales)
    everyone = torch.ones(n, dtype=torch.bool)

    def measure(model: PoseVQVAE) -> dict:
        rec_i, idx_i = run_part(model, test, none)
        rec_a, idx_a = run_part(model, test, free)
        return {"intact": errors(core_joints(body, with_body(core, rec_i), None, intact_scales), gt_intact, ~torch.zeros_like(removed), everyone),
                "amputated": errors(core_joints(body, with_body(core, rec_a), None, amp_scales), gt_amp, ~removed, everyone),
                "codes_used": len(set(idx_i.unique().tolist()) | set(idx_a.unique().tolist()))}

    c = tokenizer.config
    rows = {"amputated codebook alone (unified: C_amp for everyone)": measure(tokenizer.amputated),
            "intact codebook alone (C_non_amp for everyone)": measure(tokenizer.intact)}
    unified, intact_only = rows["amputated codebook alone (unified: C_amp for everyone)"], rows["intact codebook alone (C_non_amp for everyone)"]
    rows["dual, switched by limb status (AJAHR)"] = {"intact": intact_only["intact"], "amputated": unified["amputated"]}
    shipped = {"tokens": c.tokens, "codebook": f"{c.codebook_size} x {c.code_dim}", "test_frames": n, "rows": rows}

    ablations = {}
    for name, (tokens, size) in ABLATIONS.items():
        files = sorted(ABLATION_DIR.glob(f"{name}_s*.safetensors"))
        if not files:
            print(f"ablation {name}: no weights in {ABLATION_DIR} (run: bench_tokenizer.py train), skipped")
            continue
        model = load_pose_tokenizer(files[-1])
        row = measure(model.amputated)
        row.update({"tokens": tokens, "codebook_size": size, "bits_per_pose": round(tokens * math.log2(size)),
                    "steps": int(files[-1].stem.rsplit("_s", 1)[1]), "weights": files[-1].name})
        ablations[name] = row
        print(name, row, flush=True)
    return {"shipped": shipped, "ablations": ablations}


# -- HKMR's guess projected ----------------------------------------------------------------------


def hallucinated_mask(body, kmap) -> torch.Tensor:
    """(4 limbs, 4 classes, 33) bool: MediaPipe landmarks whose owning joint a limb class removes."""
    owners = keypoint_owners(kmap, body.skin_weights)
    table = torch.zeros(len(LIMBS), 4, len(MEDIAPIPE33.names), dtype=torch.bool)
    for i in range(len(LIMBS)):
        for c in range(1, 4):
            classes = [0] * len(LIMBS)
            classes[i] = c
            gone = absent_keypoints(MEDIAPIPE33.names, owners, body.skeleton, LimbStatus.from_classes(classes).losses)
            table[i, c, [MEDIAPIPE33.names.index(g) for g in gone]] = True
    return table


@torch.no_grad()
def hkmr_projection(body, tokenizer: PoseTokenizer, count: int) -> dict:
    data = SynthKeypoints(body, "test", stride=1, config=SynthConfig())
    batch = data.sample(count, torch.Generator().manual_seed(2025))
    g = torch.Generator().manual_seed(2026)
    classes = random_limb_classes(count, 0.5, g)
    amputee = (classes > 0).any(1)
    # absent parts' landmarks: where the intact pose puts them, plus a guessed landmark's noise, seen
    hallucinated = hallucinated_mask(body, data.keypoint_map)[torch.arange(len(LIMBS)), classes].any(1)  # (B, 33)
    obs = batch.observed
    box = (batch.keypoints2d.amax(1) - batch.keypoints2d.amin(1)).amax(-1)
    offset = torch.randn(obs.xy.shape, generator=g) * (GUESS_SCALE * box)[:, None, None] * hallucinated[..., None]
    metres_per_pixel = batch.keypoints[..., :2].std(1).norm(dim=-1) / batch.keypoints2d.std(1).norm(dim=-1)
    world = obs.world + torch.cat([offset * metres_per_pixel[:, None, None], torch.zeros(count, obs.xy.shape[1], 1)], -1)
    observed = BodyKeypoints(obs.xy + offset, obs.visible | hallucinated, world)

    regressor, _, _ = load_regressor(weights_dir() / "hkmr.safetensors")
    rotations, shapes = [], []
    for s in range(0, count, 512):
        part = slice(s, s + 512)
        out = regressor(BodyKeypoints(observed.xy[part], observed.visible[part], observed.world[part]))
        rotations.append(out.rotations[-1])
        shapes.append(out.shape[-1])
    guess, shape = torch.cat(rotations), torch.cat(shapes)

    free = free_joints_of_classes(classes)
    none = torch.zeros_like(free)
    scales, removed = limb_geometry(body, classes)
    gt = core_joints(body, batch.rotations, batch.shape, scales)
    body21 = guess[:, 1:NUM_BODY_CORE]
    dual, _ = run_part(tokenizer.amputated, body21, free)
    dual_intact, _ = run_part(tokenizer.intact, body21, none)
    dual = torch.where(amputee[:, None, None, None], dual, dual_intact)
    variants = {  # (B, 22) poses: HKMR's global orientation with each body pose
        "HKMR alone": guess,
        "HKMR -> dual tokenizer (switched by true limb labels)": with_body(guess, dual),
        "HKMR -> amputated codebook for everyone (unified)": with_body(guess, run_part(tokenizer.amputated, body21, free)[0]),
        "HKMR -> intact codebook for everyone, no limb mask": with_body(guess, run_part(tokenizer.intact, body21, none)[0]),
        "oracle: true pose and orientation, predicted phenotypes": batch.rotations,
    }
    rows = {}
    for name, pose in variants.items():
        pred = core_joints(body, pose, shape, scales)
        rows[name] = {"intact people": errors(pred, gt, ~removed, ~amputee), "amputees": errors(pred, gt, ~removed, amputee)}
        print(name, rows[name], flush=True)
    return {"samples": count, "amputees": int(amputee.sum()), "rows": rows}


# -- as a prior ----------------------------------------------------------------------------------


def auc(low: torch.Tensor, high: torch.Tensor) -> float:
    """P(a ``low`` sample scores below a ``high`` one): 1 = perfect separation."""
    scores = torch.cat([low, high])
    ranks = scores.argsort().argsort().double() + 1
    n, m = len(low), len(high)
    return float((ranks[n:].sum() - m * (m + 1) / 2) / (n * m))  # Mann-Whitney U of the high group


@torch.no_grad()
def as_prior(body, tokenizer: PoseTokenizer) -> dict:
    import roma

    test = held_out_poses(8)
    n = test.shape[0]
    core = with_body(torch.eye(3).expand(n, 1, 3, 3), test)
    ones = torch.ones(n, body.num_joints)
    gt = core_joints(body, core, None, ones)
    everyone, kept = torch.ones(n, dtype=torch.bool), torch.ones(n, NUM_BODY_CORE, dtype=torch.bool)
    vae = load_pose_prior()
    none = torch.zeros(n, test.shape[1], dtype=torch.bool)
    clean_energy = tokenizer.energy(core)
    rows = {}
    for degrees in (5, 10, 20):
        noise = torch.randn(n, test.shape[1], 3, generator=torch.Generator().manual_seed(degrees)) * math.radians(degrees) / math.sqrt(3)
        noisy = test @ roma.rotvec_to_rotmat(noise)
        projected, _ = run_part(tokenizer.intact, noisy, none)
        rows[f"{degrees} deg noise per joint"] = {
            "noisy": errors(core_joints(body, with_body(core, noisy), None, ones), gt, kept, everyone),
            "projected (intact codebook)": errors(core_joints(body, with_body(core, projected), None, ones), gt, kept, everyone),
            "VAE pose prior decode(mu)": errors(core_joints(body, with_body(core, vae.reconstruction(noisy)), None, ones), gt, kept, everyone),
            "token energy AUC clean < noisy": round(auc(clean_energy, tokenizer.energy(with_body(core, noisy))), 3),
        }
        print(degrees, rows[f"{degrees} deg noise per joint"], flush=True)
    clean = run_part(tokenizer.intact, test, none)[0]
    rows["clean (no noise)"] = {"projected (intact codebook)": errors(core_joints(body, with_body(core, clean), None, ones), gt, kept, everyone),
                                "VAE pose prior decode(mu)": errors(core_joints(body, with_body(core, vae.reconstruction(test)), None, ones), gt, kept, everyone)}
    return {"test_frames": n, "rows": rows}


# -- speed ---------------------------------------------------------------------------------------


@torch.inference_mode()
def speed(tokenizer: PoseTokenizer) -> dict:
    torch.set_num_threads(1)
    test = held_out_poses(16)
    pose = with_body(torch.eye(3).expand(test.shape[0], 1, 3, 3), test)
    amputee = LimbStatus.from_classes([0, 0, 2, 0])
    out = {}
    for people in (1, 8):
        for label, status in (("intact", LimbStatus.intact()), ("amputee", amputee)):
            x = pose[:people]
            limbs = [status] * people
            for _ in range(20):
                tokenizer.project(x, limbs)
            times = []
            for i in range(200):
                x = pose[i * people % (len(pose) - people):][:people]
                start = time.perf_counter()
                tokenizer.project(x, limbs)
                times.append(time.perf_counter() - start)
            median = sorted(times)[len(times) // 2] * 1000
            out[f"{people} {label} {'person' if people == 1 else 'people'}"] = {"ms_per_call": round(median, 2), "ms_per_person": round(median / people, 2)}
    return out


# -- tables --------------------------------------------------------------------------------------


def table(payload: dict) -> str:
    rec = payload["reconstruction"]["shipped"]
    lines = [f"# AJAHR pose tokenizer (`hmrkit/weights/pose_tokenizer.safetensors`)", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`.", "",
             f"## Reconstruction on held-out CMU test poses ({rec['test_frames']} frames; {rec['tokens']} tokens, codebook {rec['codebook']})", "",
             "Encode -> nearest codes -> decode; core joints on Anny's neutral body, mm (amputated: 1-3 limbs collapsed, collapsed joints left out).", "",
             "| codebook | intact MPJPE | intact PA-MPJPE | amputated MPJPE | amputated PA-MPJPE | codes used |", "|---|---|---|---|---|---|"]
    for name, r in rec["rows"].items():
        lines.append(f"| {name} | {r['intact']['mpjpe']} | {r['intact']['pa_mpjpe']} | {r['amputated']['mpjpe']} | {r['amputated']['pa_mpjpe']} | {r.get('codes_used', '')} |")
    abl = payload["reconstruction"]["ablations"]
    if abl:
        lines += ["", "## Token counts and codebook sizes (Tab. 4(d), Tab. C analogue): one unified codebook each, equal budget", "",
                  "| tokenizer | tokens | codebook | bits per pose | steps | intact MPJPE | intact PA-MPJPE | amputated MPJPE | amputated PA-MPJPE | codes used |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in abl.items():
            lines.append(f"| {name} | {r['tokens']} | {r['codebook_size']} | {r['bits_per_pose']} | {r['steps']} | {r['intact']['mpjpe']} | "
                         f"{r['intact']['pa_mpjpe']} | {r['amputated']['mpjpe']} | {r['amputated']['pa_mpjpe']} | {r['codes_used']} |")
    hk = payload["hkmr"]
    lines += ["", f"## HKMR's guess from synthetic landmarks, projected ({hk['samples']} people, {hk['amputees']} with absent limbs whose landmarks are hallucinated)", "",
              "| pose | intact MPJPE | intact PA-MPJPE | amputees MPJPE | amputees PA-MPJPE |", "|---|---|---|---|---|"]
    for name, r in hk["rows"].items():
        i, a = r["intact people"], r["amputees"]
        lines.append(f"| {name} | {i['mpjpe']} | {i['pa_mpjpe']} | {a['mpjpe']} | {a['pa_mpjpe']} |")
    pr = payload["prior"]
    lines += ["", f"## As a prior: noisy held-out poses ({pr['test_frames']} frames), MPJPE / PA-MPJPE mm", "",
              "| input | noisy | projected (intact codebook) | VAE prior decode(mu) | token energy AUC |", "|---|---|---|---|---|"]
    for name, r in pr["rows"].items():
        cell = lambda k: f"{r[k]['mpjpe']} / {r[k]['pa_mpjpe']}" if k in r else ""  # noqa: E731
        lines.append(f"| {name} | {cell('noisy')} | {cell('projected (intact codebook)')} | {cell('VAE pose prior decode(mu)')} | "
                     f"{r.get('token energy AUC clean < noisy', '')} |")
    lines += ["", "## Speed of `PoseTokenizer.project` (inference mode, 1 thread, median of 200 calls)", "", "| call | ms per call | ms per person |", "|---|---|---|"]
    for name, r in payload["speed"].items():
        lines.append(f"| {name} | {r['ms_per_call']} | {r['ms_per_person']} |")
    return "\n".join(lines) + "\n"


def measure(args) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    body = load_anny_body()
    tokenizer = load_pose_tokenizer(args.weights)
    command = f"python benchmarks/bench_tokenizer.py measure --count {args.count}" + (f" --weights {args.weights}" if args.weights else "")
    payload = {"machine": machine(), "command": command,
               "reconstruction": reconstruction(body, tokenizer),
               "hkmr": hkmr_projection(body, tokenizer, args.count),
               "prior": as_prior(body, tokenizer),
               "speed": speed(tokenizer)}
    payload["machine"] = machine(with_load=True)
    write(args.name, payload, table(payload))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the equal-budget ablation tokenizers into the cache")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--force", action="store_true")
    m = sub.add_parser("measure", help="measure everything, write results/tokenizer.{json,md}")
    m.add_argument("--count", type=int, default=2000)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--weights", default=None, help="a tokenizer file other than the shipped one")
    m.add_argument("--name", default="tokenizer", help="results file name (default tokenizer)")
    args = parser.parse_args()
    train_ablations(args) if args.command == "train" else measure(args)


if __name__ == "__main__":
    main()
