"""lz-string's ``decompressFromBase64``, the encoding older posthog-js sends as
``compression=lz64``. Written here because the only PyPI port needs the Python 2 ``future``
shim; checked against the npm ``lz-string`` package's own output in the tests."""

from __future__ import annotations

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_SIX_BITS = {character: value for value, character in enumerate(_ALPHABET)}


class LZStringError(ValueError):
    pass


class _BitReader:
    """Reads the stream's values lowest bit first, six bits per base64 character."""

    def __init__(self, text: str) -> None:
        try:
            self._values = [_SIX_BITS[character] for character in text]
        except KeyError as exc:
            raise LZStringError(f"{exc.args[0]!r} is not a base64 character") from None
        self._index = 0
        self._mask = 32

    def read(self, width: int) -> int:
        number = 0
        for bit in range(width):
            if self._index >= len(self._values):
                raise LZStringError("the data ends in the middle of a value")
            if self._values[self._index] & self._mask:
                number |= 1 << bit
            self._mask >>= 1
            if not self._mask:
                self._mask = 32
                self._index += 1
        return number


def decompress_from_base64(text: str, limit: int = 1_048_576) -> str:
    """The string ``LZString.compressToBase64`` was given; ``LZStringError`` if ``text`` is
    not such output, or decodes past ``limit`` characters (the output can grow with the
    square of the input: a 46 KB body could decode to 200 million characters)."""
    if not text:
        return ""
    reader = _BitReader(text.rstrip("\n"))
    # Codes 0 and 1 introduce a literal character (8 or 16 bits), 2 ends the stream; the
    # dictionary's own entries start at 3.
    dictionary: list[str] = ["", "", ""]
    width = 2
    first = reader.read(width)
    if first == 2:
        return ""
    if first not in (0, 1):
        raise LZStringError("the data does not start with a literal")
    previous = chr(reader.read(8 if first == 0 else 16))
    dictionary.append(previous)
    parts = [previous]
    size = 1
    width = 3
    grow_in = 4  # entries to add before codes need one more bit
    while True:
        code = reader.read(width)
        if code in (0, 1):
            dictionary.append(chr(reader.read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            grow_in -= 1
            if not grow_in:
                grow_in, width = 1 << width, width + 1
        elif code == 2:
            return _utf16("".join(parts))
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = previous + previous[0]
        else:
            raise LZStringError(f"code {code} refers to no dictionary entry")
        parts.append(entry)
        size += len(entry)
        if size > limit:
            raise LZStringError(f"the data decodes past {limit} characters")
        dictionary.append(previous + entry[0])
        grow_in -= 1
        previous = entry
        if not grow_in:
            grow_in, width = 1 << width, width + 1


def _utf16(text: str) -> str:
    """Characters outside the BMP arrive as JavaScript's two UTF-16 halves; join them."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
