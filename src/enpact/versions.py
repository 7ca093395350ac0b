"""Software versions (enpact, Python and the key libraries), read from package metadata without importing them:
`enpact --version-of NAME` runs in every Nextflow task, so it must cost a Python start-up and nothing more."""

from __future__ import annotations

import platform

from enpact import __version__

KEY_PACKAGES = ("torch", "enformer-pytorch", "borzoi-pytorch", "transformers", "numpy", "pandas", "scipy",
                "scikit-learn", "h5py", "pysam", "pyfaidx", "numba", "polars")


def software_versions(*packages: str) -> dict[str, str]:
    """Versions of enpact, Python and the key libraries (or of the named installed packages)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"enpact": __version__, "python": platform.python_version()}
    for package in packages or KEY_PACKAGES:
        if package in versions:
            continue
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions
