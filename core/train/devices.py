"""Which device a run trains on, how to name it, and how large inference batches are there."""
from __future__ import annotations

import torch


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple's MPS, then the CPU; a named device must be available."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"The device '{name}' is not available on this machine; choose 'auto' or 'cpu'.")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"The device '{name}' does not exist (this machine has {torch.cuda.device_count()} CUDA "
                "device(s)); choose 'cuda' or 'auto'."
            )
        return device
    if name == "mps":
        if not _mps_available():
            raise ValueError("The device 'mps' is not available on this machine; choose 'auto' or 'cpu'.")
        return torch.device("mps")
    raise ValueError(f"Unknown device '{name}'; choose one of auto, cpu, cuda or mps.")


def available_devices() -> list[str]:
    """The device names this machine can train on: "auto", "cpu", then the accelerators it has."""
    return ["auto", "cpu", *(["cuda"] if torch.cuda.is_available() else []),
            *(["mps"] if _mps_available() else [])]


def device_label(device: torch.device) -> str:
    """How to name a device to a user, e.g. "CUDA · NVIDIA H100", "MPS", "CPU"."""
    if device.type == "cuda":
        return f"CUDA · {torch.cuda.get_device_name(device)}"
    return device.type.upper()


def inference_batch_size(device: torch.device, pixels: int) -> int:
    """Images per batch for evaluation, encoding and sweeps: large on a GPU (few launches, and the
    memory is there), bounded on the CPU (cache-sized batches are faster there)."""
    values = (1 << 25) if torch.device(device).type == "cuda" else (1 << 21)
    cap = 16384 if torch.device(device).type == "cuda" else 1024
    return max(1, min(cap, values // max(int(pixels), 1)))


def device_generator(device: torch.device, seed: int) -> torch.Generator | None:
    """A generator of its own on `device`, seeded; None on a backend without (the seeded global one serves)."""
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except RuntimeError:
        return None
