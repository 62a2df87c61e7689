"""Text-driven part of the appearance discriminator: a frozen CLIP RN50 — NERCO_SPEC.md §3.

CLIP scores an image against the prompts "low light image" and "high light image"; the
loss is the L1 distance of the softmax probabilities to the wanted prompt. CLIP is built
once, lazily, by the component that uses it (never at import), in eval mode with no
gradients for its parameters.

Weights: ``--clip_weights PATH`` takes OpenAI's RN50 file (TorchScript archive or plain
state_dict) or an open_clip RN50 checkpoint (``.pt``/``.bin``/``.safetensors``). Without it
the open_clip ``openai`` weights are taken from the local cache or downloaded; offline
with nothing cached we stop at once with a message naming ``--clip_weights``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from urllib.parse import urlparse

import torch
import torch.nn.functional as F

from nerco.runtime import UserError

logger = logging.getLogger(__name__)

#: OpenAI's RN50 text tower uses QuickGELU; plain ``RN50`` in open_clip would use GELU.
CLIP_ARCH = "RN50-quickgelu"
PROMPTS = ("low light image", "high light image")
#: Softmax targets over PROMPTS.
TARGETS = {"low": (1.0, 0.0), "high": (0.0, 1.0)}
CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MISSING_WEIGHTS_HINT = (
    "pass --clip_weights PATH to a local OpenAI RN50.pt or open_clip RN50 checkpoint"
)


@contextlib.contextmanager
def _quiet_open_clip():
    """open_clip warns on the root logger when a model is built without weights."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def read_clip_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Read a CLIP RN50 state_dict from an OpenAI or open_clip file (see module docstring)."""
    if not os.path.isfile(path):
        raise UserError(f"--clip_weights {path} does not exist; {MISSING_WEIGHTS_HINT}")
    state = None
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - fall through to the TorchScript reader
            try:
                state = torch.jit.load(path, map_location="cpu").state_dict()
            except Exception as exc:  # noqa: BLE001
                raise UserError(
                    f"--clip_weights {path} is neither a state_dict nor a TorchScript "
                    f"archive ({type(exc).__name__}); {MISSING_WEIGHTS_HINT}"
                ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"--clip_weights {path} holds no state_dict; {MISSING_WEIGHTS_HINT}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def default_clip_weights_path() -> str:
    """Path of open_clip's cached ``openai`` RN50 weights, downloading them when online."""
    from huggingface_hub import try_to_load_from_cache
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    cfg = get_pretrained_cfg(CLIP_ARCH, "openai")
    repo = cfg["hf_hub"].rstrip("/")
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return cached
    if not _hub_reachable():
        raise UserError(
            f"CLIP RN50 weights are not cached and cannot be downloaded offline; "
            f"{MISSING_WEIGHTS_HINT}"
        )
    try:
        return download_pretrained(cfg)
    except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
        raise UserError(
            f"downloading CLIP RN50 weights failed ({type(exc).__name__}); {MISSING_WEIGHTS_HINT}"
        ) from None


def build_clip(
    weights: str | None = None, device: torch.device | str = "cpu", random_init: bool = False
) -> torch.nn.Module:
    """Frozen CLIP RN50 (QuickGELU) in eval mode on ``device``.

    Args:
        weights: a local weights file, or None for open_clip's cached/downloaded weights.
        random_init: keep open_clip's random initialisation (tests only).
    """
    import open_clip

    state = None
    if not random_init:
        state = read_clip_state_dict(weights or default_clip_weights_path())
    with _quiet_open_clip():
        model = open_clip.create_model(CLIP_ARCH)
    if state is not None:
        result = model.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if k != "attn_mask"]
        if missing or result.unexpected_keys:
            raise UserError(
                f"--clip_weights {weights or 'default'} is not a CLIP RN50 checkpoint "
                f"({len(missing)} missing, {len(result.unexpected_keys)} unexpected keys, "
                f"e.g. {(missing + result.unexpected_keys)[0]}); {MISSING_WEIGHTS_HINT}"
            )
    model = model.to(device).float().eval()
    model.requires_grad_(False)
    return model


class CLIPTerm:
    """The CLIP loss of §3 on a batch of generated images.

    Args:
        model: a frozen CLIP from :func:`build_clip`.
        normalize_input: spec §8.5. False (released): the [-1, 1] image goes to CLIP as
            is. True (paper): mapped to [0, 1] and normalised with CLIP's mean/std.

    The prompts are encoded once, here; afterwards only the image tower and the logit scale
    are kept, so the text tower (about 250 MB) is freed once the caller drops ``model``.
    """

    def __init__(self, model: torch.nn.Module, normalize_input: bool = False) -> None:
        import open_clip

        self.normalize_input = normalize_input
        device = next(model.parameters()).device
        tokens = open_clip.get_tokenizer(CLIP_ARCH)(list(PROMPTS)).to(device)
        with torch.no_grad():
            self.text_features = model.encode_text(tokens, normalize=True)
        self.visual = model.visual
        self.logit_scale = model.logit_scale.detach()
        self.mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] → (N, 3, 224, 224) CLIP input.

        Bilinear, align_corners False, no antialiasing (the torchvision of the release
        did not antialias tensors).
        """
        x = F.interpolate(
            images,
            size=(CLIP_SIZE, CLIP_SIZE),
            mode="bilinear",
            align_corners=False,
            antialias=False,
        )
        if self.normalize_input:
            x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return x

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] → (N, 2) softmax over (low light, high light)."""
        features = F.normalize(self.visual(self.prepare(images)), dim=-1)  # encode_image
        logits = self.logit_scale.exp() * features @ self.text_features.t().to(features)
        return logits.softmax(dim=-1)

    def loss(self, images: torch.Tensor, target: str) -> torch.Tensor:
        """L1(p, target) with target ``"high"`` = [0, 1] or ``"low"`` = [1, 0]."""
        probs = self.probabilities(images)
        wanted = probs.new_tensor(TARGETS[target]).expand_as(probs)
        return F.l1_loss(probs, wanted)
