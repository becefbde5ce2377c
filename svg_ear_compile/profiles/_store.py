"""Reading, writing and finding profiles: ``yaml.safe_load`` only, atomic writes, one warning when none fits.

``load_profile("auto")`` looks in ``$SVG_EAR_PROFILES`` (directories, ``os.pathsep``-separated) and then
in the profiles shipped with the package, for one whose device is this GPU (by
``torch.cuda.get_device_name()``, or the ``device_name`` you pass) and whose model signature fits.
None fits: one :class:`ProfileWarning` says why, and the caller runs its conservative default. A file
you name is held to the same checks, but a mismatch there is an error.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import warnings
from collections.abc import Callable, Sequence

from ._schema import PROFILE_SCHEMA, ModelSignature, Profile, ProfileError

SHIPPED_DIR = pathlib.Path(__file__).resolve().parent
PROFILES_ENV = "SVG_EAR_PROFILES"


class ProfileWarning(UserWarning):
    """``profile="auto"`` found no profile for this device and model; the default config runs."""


def current_device_name() -> str:
    """``torch.cuda.get_device_name()`` of the current device, or ``"cpu"`` without CUDA."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def same_device(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def profile_dirs() -> list[pathlib.Path]:
    """Where ``profile="auto"`` looks, in order: ``$SVG_EAR_PROFILES``, then the shipped profiles."""
    extra = [pathlib.Path(p) for p in os.environ.get(PROFILES_ENV, "").split(os.pathsep) if p]
    return [*extra, SHIPPED_DIR]


def is_profile_text(text: str) -> bool:
    """Whether YAML text is a profile (rather than a plain :class:`SvgEarConfig`); cheap, no parsing."""
    return any(line.strip() == f"schema: {PROFILE_SCHEMA}" for line in text.splitlines())


def read_profile(path: str | os.PathLike) -> Profile:
    """The profile in ``path``; a :class:`ProfileError` naming the file says what is wrong with it."""
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ProfileError(f"profile {str(path)!r}: cannot read it ({error.strerror or error})") from None
    try:
        return Profile.from_yaml(text)
    except ProfileError as error:
        raise ProfileError(f"profile {str(path)!r}: {error}") from None


def write_atomic(path: str | os.PathLike, data: bytes | str) -> pathlib.Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename: readers see
    the old file or the new one, never half of one. An unwritable place is a :class:`ProfileError`."""
    path = pathlib.Path(path)
    payload = data.encode() if isinstance(data, str) else data
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False) as handle:
            tmp = handle.name
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise ProfileError(f"cannot write {str(path)!r}: {error.strerror or error}") from None
    return path


def write_profile(profile: Profile, path: str | os.PathLike) -> pathlib.Path:
    """Write ``profile`` as YAML to ``path``, atomically."""
    return write_atomic(path, profile.to_yaml())


def check_fits(profile: Profile, device_name: str, signature: ModelSignature | None) -> str | None:
    """Why ``profile`` does not fit this device and model, or None."""
    if not same_device(profile.device, device_name):
        return f"tuned on {profile.device!r}, this device is {device_name!r}"
    if signature is not None:
        why = profile.model.mismatch(signature)
        if why is not None:
            return f"tuned for another model ({why})"
    return None


def load_profile(
    spec: str | os.PathLike,
    *,
    device_name: str | None = None,
    signature: ModelSignature | None = None,
    search_dirs: Sequence[str | os.PathLike] | None = None,
    device_name_provider: Callable[[], str] = current_device_name,
) -> Profile | None:
    """The profile for this device and model.

    Args:
        spec: ``"auto"`` (search :func:`profile_dirs` or ``search_dirs``) or the path of a profile.
        device_name: the GPU name to match; default ``device_name_provider()`` (CUDA's name, or "cpu").
        signature: what the model looks like (:func:`graph_signature`); None skips the model check.

    Returns the profile, or, for ``"auto"`` with none fitting, None after one :class:`ProfileWarning`.
    Raises :class:`ProfileError` when a named file is unreadable, of another schema version, or made for
    another device or model.

    Example::

        profile = load_profile("auto", signature=graph_signature(gm))
        config = profile.config() if profile else SvgEarConfig()
    """
    device = device_name if device_name is not None else device_name_provider()
    if str(spec) != "auto":
        profile = read_profile(spec)
        why = check_fits(profile, device, signature)
        if why is not None:
            raise ProfileError(f"profile {str(spec)!r} does not fit: {why}")
        return profile
    dirs = [pathlib.Path(d) for d in search_dirs] if search_dirs is not None else profile_dirs()
    rejected = []
    for path in sorted(p for d in dirs if d.is_dir() for p in d.glob("*.yaml")):
        try:
            profile = read_profile(path)
        except ProfileError as error:
            rejected.append(str(error))
            continue
        why = check_fits(profile, device, signature)
        if why is None:
            return profile
        rejected.append(f"{path.name}: {why}")
    model = signature.describe() if signature is not None else "this model"
    detail = "; ".join(rejected) if rejected else f"no profiles in {[str(d) for d in dirs]}"
    warnings.warn(f"svg_ear profile='auto': no tuned profile for device {device!r} and {model} ({detail}); "
                  "running the conservative default config. Run svg-ear-tune on this GPU to make one.",
                  ProfileWarning, stacklevel=2)
    return None
