"""p123client.exception, when first imported, adds process-wide warning filters and swaps warnings.formatwarning for
an ANSI-coloured one. Importing p123client here first, under guard, keeps the test session's warnings as they were."""

import warnings

_formatwarning = warnings.formatwarning
with warnings.catch_warnings():
    import p123client  # noqa: F401
warnings.formatwarning = _formatwarning
