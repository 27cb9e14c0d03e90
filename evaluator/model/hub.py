"""Find a model's files: a Hub id (downloaded once, or from the offline cache) at a pinned revision."""

from __future__ import annotations

import os
from pathlib import Path

from in9_builder.errors import In9Error


def offline() -> bool:
    """Whether the Hub is switched off (HF_HUB_OFFLINE), as huggingface_hub reads it."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "0").lower() in (
        "1",
        "true",
        "yes",
    )


def fetch_hub(model: str, revision: str | None, *, allow_pickle: bool) -> tuple[Path, str]:
    """Download (or find in the cache) a classifier's files; return the snapshot folder and its sha."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    patterns = ["*.json", "*.safetensors", "*.py", "*.txt", "*.model"] + (  # *.model: spiece (SigLIP)
        ["*.bin", "*.pth", "*.pt"] if allow_pickle else []
    )
    where = f"{model!r}" + (f" at revision {revision!r}" if revision else "")
    try:
        folder = Path(snapshot_download(model, revision=revision, allow_patterns=patterns))
    except HFValidationError:
        raise In9Error(
            f"model={model!r}: not an existing local folder and not a valid Hub model id "
            "(expected 'org/name' or a path)"
        ) from None
    except RevisionNotFoundError:
        raise In9Error(
            f"revision={revision!r}: not found for Hub model {model!r}; pass a branch, tag or "
            "commit sha that exists"
        ) from None
    except GatedRepoError:
        raise In9Error(
            f"model={where}: gated on the Hub; accept its terms and log in (hf auth login)"
        ) from None
    except RepositoryNotFoundError:
        raise In9Error(
            f"model={where}: no such model on the Hub (or it is private: log in with "
            "`hf auth login`); check the id or pass a local folder"
        ) from None
    except LocalEntryNotFoundError:
        state = "offline (HF_HUB_OFFLINE=1)" if offline() else "the Hub could not be reached"
        raise In9Error(
            f"model={where}: not a local folder and not in the Hub cache, and {state}; download it "
            "first with network access or pass a local folder"
        ) from None
    except OSError as exc:
        raise In9Error(f"model={where}: could not be downloaded ({exc.__class__.__name__}: {exc})") from None
    return folder, folder.name


def check_weights(folder: Path, model_id: str, allow_pickle: bool) -> None:
    """Refuse a folder without safetensors weights (pickle ones only if
    ``allow_pickle``), naming what it has."""
    if any(folder.glob("*.safetensors")):
        return
    pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pth", ".pt")]
    if pickles and not allow_pickle:
        raise In9Error(
            f"model={model_id}: only pickle weights ({', '.join(sorted(pickles))}), which can run "
            "arbitrary code when loaded; pass allow_pickle=True if you trust the source"
        )
    if not pickles:
        raise In9Error(
            f"model={model_id}: no weights: found {list_folder(folder)}, but no model.safetensors (or *.bin "
            "with allow_pickle=True); pass a repository or folder that holds the model's weights"
        )


def list_folder(folder: Path, shown: int = 6) -> str:
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    if not names:
        return "an empty folder"
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
