"""Model artifacts: scikit-learn estimators saved with skops under the storage root, checked on every load.

Only the skops format is accepted: pickle and joblib files can run arbitrary code when loaded.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etlml.errors import ModelError
from etlml.models.spec import check_version_name

ARTIFACTS_FOLDER = "+models"
"""The folder under the storage root that holds ``<version>/model.skops``. Every run folder is under
``<root>/<dag_id>/`` and a dag_id is letters, digits, ``.``, ``_`` and ``-`` only, so no DAG can
write where an artifact lives. (Versions registered before 2026-11 keep ``<root>/models/``:
their stored ``artifact_uri`` says where.)"""


TRUSTED_TYPES = frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"})
"""scikit-learn's own types that skops does not trust by default but that hold only arrays of tree
nodes: a fitted HistGradientBoostingRegressor (``etlml models train --estimator hist_gradient_boosting``)
is made of them. Any other type skops does not trust is refused."""


class UntrustedArtifactError(ModelError):
    """An artifact is not what the registry recorded, not a skops file, or holds untrusted types."""


@contextmanager
def _quiet() -> Iterator[None]:
    """skops finds a function's module (a NumPy ufunc's, say) by looking through ``sys.modules``, when
    imported and when saving, and so touches every deprecated alias Airflow keeps: hundreds of
    FutureWarnings about nothing in the model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # others (sklearn's version mismatch) still show
        yield


def _skops() -> Any:
    with _quiet():  # importing skops looks up the module of every NumPy ufunc
        import skops.io
    return skops.io


def dump(estimator: Any, path: Path) -> None:
    """Save ``estimator`` with skops at ``path`` (a local file; :func:`store` then copies it)."""
    with _quiet():
        _skops().dump(estimator, path)


def _estimator_from(data: bytes, source: str) -> Any:
    skops_io = _skops()
    try:
        with _quiet():
            listed = skops_io.get_untrusted_types(data=data)
        untrusted = [t for t in listed if t not in TRUSTED_TYPES]
        if untrusted:
            raise UntrustedArtifactError(
                f"{source} holds types skops does not trust by default: {sorted(untrusted)}; "
                "save a plain scikit-learn estimator or pipeline"
            )
        with _quiet():
            estimator = skops_io.loads(data, trusted=list(listed))
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, UntrustedArtifactError):
            raise
        raise UntrustedArtifactError(
            f"{source} is not a readable skops file ({exc}); pickle and joblib files are refused, "
            "save the estimator with skops.io.dump(estimator, 'model.skops')"
        ) from exc
    if not callable(getattr(estimator, "predict", None)):
        raise UntrustedArtifactError(f"{source} holds a {type(estimator).__name__}, which has no predict()")
    return estimator


def store(source_path: str, storage_root: str, version: str) -> tuple[str, str]:
    """Check the skops file at ``source_path``, copy it to ``<root>/+models/<version>/model.skops``.

    Returns the stored URI and its sha256. Refuses anything skops cannot load safely, and a version
    name that is not one path segment (:func:`etlml.models.spec.check_version_name`).
    """
    from airflow.sdk import ObjectStoragePath

    check_version_name(version)
    data = ObjectStoragePath(source_path).read_bytes()
    return store_bytes(data, source_path, storage_root, version, "model.skops")


def store_error_estimator(estimator: Any, storage_root: str, version: str) -> tuple[str, str]:
    """Save a version's error estimator with skops at ``<root>/+models/<version>/error-estimator-
    <sha256 prefix>.skops`` (a refit never overwrites the file an earlier row names); URI and sha256."""
    import tempfile

    check_version_name(version)
    with tempfile.TemporaryDirectory(prefix="etlml-estimator-") as folder:
        path = Path(folder, "estimator.skops")
        dump(estimator, path)
        data = path.read_bytes()
    name = f"error-estimator-{hashlib.sha256(data).hexdigest()[:16]}.skops"
    return store_bytes(data, name, storage_root, version, name)


def store_bytes(data: bytes, source: str, storage_root: str, version: str, name: str) -> tuple[str, str]:
    """Check the skops bytes ``data`` (read from ``source``), write them to
    ``<root>/+models/<version>/<name>``; the stored URI and its sha256."""
    from airflow.sdk import ObjectStoragePath

    _estimator_from(data, source)
    target = ObjectStoragePath(storage_root) / ARTIFACTS_FOLDER / version / name
    target.parent.mkdir(parents=True, exist_ok=True)
    handle: Any = target  # ObjectStoragePath.open is untyped
    with handle.open("wb") as fh:
        fh.write(data)
    return str(target), hashlib.sha256(data).hexdigest()


def read_bytes(uri: str) -> bytes:
    """The bytes at ``uri``: a local file (``file://`` or a path) read directly, anything else through
    Airflow's ``ObjectStoragePath`` (imported only then: a command that checks a local artifact, like
    ``etlml models shadow``, does not pay for importing Airflow)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.scheme == "file" and parts.netloc in {"", "localhost"}:
        return Path(unquote(parts.path)).read_bytes()
    if parts.scheme == "":
        return Path(uri).read_bytes()
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(uri).read_bytes()


def load_estimator(uri: str, expected_sha256: str) -> Any:
    """Load a stored estimator, refusing it unless its bytes have the sha256 the registry recorded."""
    try:
        data = read_bytes(uri)
    except FileNotFoundError as exc:
        raise UntrustedArtifactError(f"model artifact {uri} is missing") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise UntrustedArtifactError(
            f"model artifact {uri} has sha256 {digest}, the registry recorded {expected_sha256}: "
            "it was changed after registration; register the new file as a new version"
        )
    return _estimator_from(data, uri)
