"""The text of a sample as its tokens arrive, for stop strings and streaming."""

from __future__ import annotations

from typing import Any


class IncrementalText:
    """Decoded text that grows one token at a time.

    With a fast tokenizer (and no clean-up of tokenization spaces) each token is decoded by the tokenizers
    library's ``DecodeStream`` (O(1) per token; it holds back an incomplete multi-byte character);
    otherwise the whole sequence is decoded again at every token, as ``tokenizer.decode`` would.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.text = ""
        backend = getattr(tokenizer, "_tokenizer", None)
        self.append_only = backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", False)
        if self.append_only:
            from tokenizers.decoders import DecodeStream

            self._backend = backend
            self._stream = DecodeStream(skip_special_tokens=True)

    def add(self, tokens: list[int]) -> None:
        """Account for ``tokens[-1]``, just appended to ``tokens``."""
        if self.append_only:
            chunk = self._stream.step(self._backend, tokens[-1])
            if chunk:
                self.text += chunk
        else:
            self.text = self.final(tokens)

    def final(self, tokens: list[int]) -> str:
        """The full decode of ``tokens`` (what ``tokenizer.decode`` gives)."""
        return self.tokenizer.decode(tokens, skip_special_tokens=True)
