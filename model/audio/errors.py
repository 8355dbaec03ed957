"""The typed decoding failures: each has a stable `code` the service maps to a 4xx without
parsing messages (model/audio/decode.py raises them)."""

from __future__ import annotations


class AudioError(ValueError):
    """Base class of decoding failures; `code` is stable and machine-readable."""

    code = "audio_error"


class UnsupportedFormatError(AudioError):
    """The bytes are not a container/codec we can read (or hold no audio stream)."""

    code = "unsupported_format"


class CorruptAudioError(AudioError):
    """The container was recognised but its data is damaged, truncated or non-finite."""

    code = "corrupt_audio"


class EmptyAudioError(AudioError):
    """Zero samples, or nothing above the silence floor."""

    code = "empty_audio"


class TooLongError(AudioError):
    """Longer than the caller's duration cap (checked before and while decoding)."""

    code = "too_long"
