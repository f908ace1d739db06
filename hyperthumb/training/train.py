"""Training: the paper's loss with the rate trade-off sampled per batch, resumable, logged.

loss = L1(restored, HR) + w * MSE(decoded thumbnail, bicubic(HR)) + lambda(t) * estimated bpp
(HyperThumbnail, Qi et al., CVPR 2023, w = 0.6), with t sampled per batch so one checkpoint spans
all rates, plus a floor on the thumbnail: a hinge on the encoder's departure from bicubic(HR) past
`thumbnail_floor_db`. Without it the paper's w let our CPU runs push the thumbnail below 30 dB,
no longer an ordinary thumbnail; a fixed larger w instead held back the encoders that stay clear.
"""
from __future__ import annotations

import csv
import json
import math
import platform
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from hyperthumb.codec.thumbnail_codec import HyperThumbCodec
from hyperthumb.evaluation.metrics import lpips_distance, lpips_network, psnr, thumbnail_psnr
from hyperthumb.models.model import HyperThumbConfig, HyperThumbModel
from hyperthumb.models.pixels import bicubic_downscale
from hyperthumb.models.pretrained import STATE_NAME, is_checkpoint
from hyperthumb.training.adversarial import DISCRIMINATOR_NAME, PatchDiscriminator, discriminator_loss, generator_loss
from hyperthumb.training.data import PatchSampler, center_crops
from hyperthumb.training.options import TrainOptions
from hyperthumb.zoo import encoder_options

LOG_NAME = "train_log.csv"
OPTIMIZER_NAME = "optimizer.safetensors"
LOG_COLUMNS = ["step", "seconds", "bpp", "psnr_hr", "psnr_lr", "lpips_rgb", "lpips_y"]


class LossTerms(NamedTuple):
    codec: torch.Tensor  # what the encoder, QPM and decoder minimise
    rate_fit: torch.Tensor  # the rate model's own fitting loss
    parts: dict[str, float]  # the terms, for the progress line
    discriminator: Optional[torch.Tensor]  # the discriminator's loss, where there is one


def loss_terms(model: HyperThumbModel, hr: torch.Tensor, rate_t: torch.Tensor, thumbnail_weight: float,
               thumbnail_floor_db: Optional[float] = None, thumbnail_floor_weight: float = 0.0,
               network_dtype: Optional[torch.dtype] = None, perceptual: Optional[torch.nn.Module] = None,
               perceptual_weight: float = 0.0, discriminator: Optional[PatchDiscriminator] = None,
               adversarial_weight: float = 0.0) -> LossTerms:
    """The losses of one batch.

    `perceptual` (an LPIPS network, inputs in -1..1) adds `perceptual_weight` times its distance
    between the restored photo and the original: the sharp decoders' term. `discriminator` adds
    `adversarial_weight` times its generator loss on the restored photo, and gives its own loss.

    The rate model is fitted by maximum likelihood on detached coefficients with its own optimiser,
    so its density tracks the coefficients quickly whatever the rate weight; the codec loss moves
    the encoder and the QPM against that density. The floor acts on the encoder's output before
    JPEG, per patch, so it bounds what the encoder hides in the thumbnail and leaves the JPEG
    error to the rate trade-off.
    """
    result = model(hr, rate_t, network_dtype)
    pixels = hr.shape[-1] * hr.shape[-2]
    target = bicubic_downscale(hr, model.config.scale)
    hr_l1 = (result.restored - hr).abs().mean(dim=(1, 2, 3))
    lr_mse = (result.decoded_thumbnail - target).pow(2).mean(dim=(1, 2, 3))
    bpp = result.bits / pixels
    codec_loss = hr_l1 + thumbnail_weight * lr_mse + model.rate_lambda(rate_t) * bpp
    if thumbnail_floor_db is not None:
        encoder_mse = (result.thumbnail - target).pow(2).mean(dim=(1, 2, 3))
        codec_loss = codec_loss + thumbnail_floor_weight * F.relu(encoder_mse - 10 ** (-thumbnail_floor_db / 10))
    parts = {"l1": hr_l1.mean().item(), "mse_lr": lr_mse.mean().item(), "bpp_est": bpp.mean().item()}
    if perceptual is not None and perceptual_weight:
        distance = perceptual(result.restored * 2 - 1, hr * 2 - 1).flatten()
        codec_loss = codec_loss + perceptual_weight * distance
        parts["perceptual"] = distance.mean().item()
    judged = None
    if discriminator is not None and adversarial_weight:
        fooled = generator_loss(discriminator, result.restored)
        codec_loss = codec_loss + adversarial_weight * fooled
        parts["adversarial"] = fooled.mean().item()
        judged = discriminator_loss(discriminator, hr, result.restored)
    codec_loss = codec_loss.mean()
    fit_loss = model.rate_model(result.scaled_coefficients.detach()).mean() / pixels
    return LossTerms(codec_loss, fit_loss, parts, judged)


def validate(model: HyperThumbModel, crops: list, rate_t: float, device: str) -> dict[str, float]:
    """Real files: encode each crop at a fixed rate setting, measure the file and the restoration."""
    codec = HyperThumbCodec(model, device=device, engine="torch")  # the weights keep changing: no exports
    rows = []
    for crop in crops:
        thumb = codec.encode(crop, target_bpp=None, rate_t=rate_t, keep_metadata=False)  # the pixels' bpp
        restored = codec.decode(thumb.jpeg)
        rows.append({
            "bpp": thumb.bpp, "psnr_hr": psnr(restored, crop),
            "psnr_lr": thumbnail_psnr(crop, thumb.image, model.config.scale),
            "lpips_rgb": lpips_distance(restored, crop), "lpips_y": lpips_distance(restored, crop, y_only=True),
        })
    model.train()
    return {k: (float(np.mean([r[k] for r in rows])) if rows[0][k] is not None else None) for k in rows[0]}


def _save_optimizer(optimizers: dict[str, torch.optim.Optimizer], path: Path) -> None:
    tensors, meta = {}, {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        meta[name] = state["param_groups"]
        for index, values in state["state"].items():
            for key, value in values.items():
                tensors[f"{name}.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    save_file(tensors, str(path), metadata={"param_groups": json.dumps(meta)})


def _load_optimizer(optimizers: dict[str, torch.optim.Optimizer], path: Path) -> None:
    tensors = load_file(str(path))
    for name, optimizer in optimizers.items():
        state: dict = {}
        for key, value in tensors.items():
            owner, index, field_name = key.split(".", 2)
            if owner == name:
                state.setdefault(int(index), {})[field_name] = value
        optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


def _append_log(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in LOG_COLUMNS})


def learning_rate_factor(schedule: str, progress: float) -> float:
    """Multiplier of the base learning rates at `progress` (0..1) through this run's budget.

    "cosine" anneals to zero by the end of each run, so a resumed run warm-restarts from the base rate.
    """
    if schedule == "none":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    raise ValueError(f"unknown learning-rate schedule {schedule!r} (use 'cosine' or 'none')")


def _initial_model(options: TrainOptions) -> HyperThumbModel:
    """The model a new run starts from: `init_from`'s weights, or new ones."""
    if options.init_from:
        model = HyperThumbModel.from_pretrained(options.init_from)
        if model.config.encoder != options.encoder:
            raise ValueError(f"{options.init_from} holds a {model.config.encoder!r} model, not {options.encoder!r}")
        if options.preset and encoder_options(options.encoder, options.preset) != model.config.encoder_options:
            model = model.with_encoder_options(encoder_options(options.encoder, options.preset))
    else:
        model = HyperThumbModel(HyperThumbConfig(
            encoder=options.encoder, encoder_options=encoder_options(options.encoder, options.preset or "cpu")))
    changes = {name: value for name, value in (("hr_blocks", options.hr_blocks), ("hr_features", options.hr_features))
               if value is not None}
    if changes:
        model = model.with_decoder(replace(model.config.decoder, **changes))
    return model


def _adopt_encoder(model: HyperThumbModel, state: dict, options: TrainOptions) -> None:
    """Moves `model` onto `options.encoder_from`'s encoder, QPM and rate model, keeping its decoder;
    the state's `initialised_from` then names that checkpoint, and the earlier ones the steps they
    were trained against (for the model card)."""
    if not options.decoder_only:
        raise ValueError("--encoder-from moves a decoder onto another encoder: give --decoder-only too")
    source = HyperThumbModel.from_pretrained(options.encoder_from)
    if (source.config.encoder, source.config.encoder_options) != (model.config.encoder, model.config.encoder_options):
        raise ValueError(f"{options.encoder_from} has a different encoder ({source.config.encoder}, "
                         f"{source.config.encoder_options}) from this run's")
    adopted = {name: value for name, value in source.state_dict().items() if not name.startswith("decoder.")}
    own = {name for name in model.state_dict() if not name.startswith("decoder.")}
    if set(adopted) != own:
        raise ValueError(f"{options.encoder_from}'s encoder, QPM and rate model do not match this run's")
    model.load_state_dict(adopted, strict=False)
    source_state = Path(options.encoder_from) / STATE_NAME
    start = {"checkpoint": options.encoder_from,
             "step": json.loads(source_state.read_text())["step"] if source_state.is_file() else None}
    previous = state.get("initialised_from")
    earlier = list(previous.get("earlier", [])) if previous else []
    if previous and (previous["checkpoint"], previous.get("step")) != (start["checkpoint"], start["step"]):
        earlier.append({"checkpoint": previous["checkpoint"], "step": previous.get("step"), "until_step": state["step"]})
    state["initialised_from"] = {**start, "earlier": earlier} if earlier else start


def train(options: TrainOptions) -> Path:
    """Trains (or resumes) a model in `options.out`; returns that folder."""
    if options.steps is None and options.minutes is None:
        raise ValueError("give --steps or --minutes")
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(options.seed)
    state_path = out / STATE_NAME
    resumed = state_path.exists() and is_checkpoint(out)
    if resumed:
        model = HyperThumbModel.from_pretrained(out)
        state = json.loads(state_path.read_text())
    else:
        model = _initial_model(options)
        state = {"step": 0, "seconds": 0.0, "commands": []}
        if options.init_from:
            start = Path(options.init_from) / STATE_NAME
            state["initialised_from"] = {"checkpoint": options.init_from,
                                         "step": json.loads(start.read_text())["step"] if start.is_file() else None}
    state.setdefault("runs", [])
    if options.encoder_from:
        _adopt_encoder(model, state, options)
    model.to(device).train()
    if options.decoder_only:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith("decoder."))
        main_params = list(model.decoder.parameters())
        optimizers = {"main": torch.optim.Adam(main_params, lr=options.lr)}
    else:
        rate_params = list(model.rate_model.parameters())
        encoder_params = list(model.encoder.parameters())
        other_params = [p for n, p in model.named_parameters() if not n.startswith(("rate_model.", "encoder."))]
        main_params = encoder_params + other_params
        optimizers = {"main": torch.optim.Adam([{"params": other_params},
                                                {"params": encoder_params,
                                                 "lr": options.lr * options.encoder_lr_scale}], lr=options.lr),
                      "rate": torch.optim.Adam(rate_params, lr=options.rate_lr)}
    discriminator = None
    if options.adversarial_weight:
        discriminator = PatchDiscriminator().to(device).train()
        if (out / DISCRIMINATOR_NAME).is_file():
            discriminator.load_state_dict(load_file(str(out / DISCRIMINATOR_NAME)))
        # The discriminator learns at the decoder's rate, with Adam's betas of GAN practice (0.5, 0.999).
        optimizers["discriminator"] = torch.optim.Adam(discriminator.parameters(), lr=options.lr, betas=(0.5, 0.999))
    previous = state["runs"][-1] if state["runs"] else {}
    # Adam's moments carry over only between runs that train the same parameters.
    if resumed and (out / OPTIMIZER_NAME).exists() and previous.get("decoder_only", False) == options.decoder_only:
        _load_optimizer(optimizers, out / OPTIMIZER_NAME)
    perceptual = None
    if options.perceptual_weight:
        perceptual = lpips_network("vgg")
        if perceptual is None:
            raise ValueError("--perceptual-weight needs the LPIPS VGG16 weights: "
                             "run `python -m hyperthumb lpips-weights`")
        perceptual.to(device)
    sampler = PatchSampler(options.data, options.patch, seed=options.seed + state["step"], device=device)
    crops = center_crops(options.val, options.val_crop) if options.val else []
    state["commands"].append(options.command)
    threads = torch.get_num_threads()
    machine = (torch.cuda.get_device_name() if device == "cuda" else
               f"CPU ({platform.processor() or platform.machine()}, {threads} thread{'s' if threads > 1 else ''})")
    state["runs"].append({**{key: value for key, value in asdict(options).items() if key not in ("command", "extra")},
                          "first_step": state["step"], "machine": machine})
    state["device"] = machine  # the last run's; each run keeps its own (a checkpoint may move to a GPU and back)

    def save() -> None:
        state["saved"] = datetime.now(timezone.utc).isoformat(timespec="seconds")  # the checkpoint's date, for pages
        model.save_pretrained(out)  # config.json: the model's config only; steps and time go in the state
        if discriminator is not None:
            save_file(discriminator.state_dict(), str(out / DISCRIMINATOR_NAME))
        _save_optimizer(optimizers, out / OPTIMIZER_NAME)
        state_path.write_text(json.dumps(state, indent=2) + "\n")

    def run_validation() -> None:
        if crops:
            figures = validate(model, crops, options.val_rate_t, device)
            _append_log(out / LOG_NAME, {"step": state["step"], "seconds": round(state["seconds"], 1), **figures})
            tqdm.write(f"step {state['step']}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in figures.items() if v is not None))

    first_step, started_at = state["step"], time.monotonic()
    end_step = first_step + options.steps if options.steps else math.inf
    deadline = started_at + options.minutes * 60 if options.minutes else math.inf
    base_lrs = [[group["lr"] for group in optimizer.param_groups] for optimizer in optimizers.values()]

    def progress() -> float:
        done_steps = (state["step"] - first_step) / options.steps if options.steps else 0.0
        done_time = (time.monotonic() - started_at) / (options.minutes * 60) if options.minutes else 0.0
        return max(done_steps, done_time)
    bar = tqdm(total=options.steps, initial=0, unit="step", dynamic_ncols=True, mininterval=5)
    if state["step"] == 0:
        run_validation()
        save()
    last_saved = time.monotonic()
    while state["step"] < end_step and time.monotonic() < deadline:
        started = time.perf_counter()
        hr = sampler.batch(options.batch)
        factor = learning_rate_factor(options.lr_decay, progress())
        for optimizer, lrs in zip(optimizers.values(), base_lrs):
            for group, lr in zip(optimizer.param_groups, lrs):
                group["lr"] = lr * factor
        rate_t = options.rate_t_min + torch.rand(options.batch, device=device) * (options.rate_t_max - options.rate_t_min)
        loss, fit_loss, parts, judged = loss_terms(model, hr, rate_t, options.thumbnail_weight,
                                                   options.thumbnail_floor_db, options.thumbnail_floor_weight,
                                                   torch.bfloat16 if options.bf16 else None, perceptual,
                                                   options.perceptual_weight, discriminator,
                                                   options.adversarial_weight)
        for optimizer in optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main_params, options.grad_clip)
        optimizers["main"].step()
        if judged is not None:
            optimizers["discriminator"].zero_grad(set_to_none=True)  # the decoder's backward reached it too
            judged.backward()
            optimizers["discriminator"].step()
        if "rate" in optimizers:
            optimizers["rate"].zero_grad(set_to_none=True)
            (fit_loss + model.rate_model.auxiliary_loss()).backward()
            optimizers["rate"].step()
        state["step"] += 1
        state["seconds"] += time.perf_counter() - started
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", bpp=f"{parts['bpp_est']:.3f}", l1=f"{parts['l1']:.4f}")
        if state["step"] % options.val_every == 0:
            run_validation()
        if time.monotonic() - last_saved > 300:
            save()
            last_saved = time.monotonic()
    bar.close()
    if state["step"] % options.val_every != 0:
        run_validation()
    save()
    return out
