"""StopStream: UTF-8 split across tokens, stop sequences across tokens, hold-back and flush."""

from __future__ import annotations

from mindfu_adapters.llm.text_stream import StopStream


def run(pieces: list[bytes], stops: list[str]) -> tuple[list[str], str, bool]:
    stream = StopStream(stops)
    out = [stream.feed(p) for p in pieces]
    return out, stream.flush(), stream.stopped


def test_plain_text_passes_through() -> None:
    out, rest, stopped = run([b"Hello", b" world"], [])
    assert out == ["Hello", " world"]
    assert (rest, stopped) == ("", False)


def test_multibyte_characters_are_never_split() -> None:
    snowman = "☃".encode()
    out, rest, _ = run([b"a", snowman[:1], snowman[1:2], snowman[2:] + b"b"], [])
    assert out == ["a", "", "", "☃b"]
    assert rest == ""


def test_stop_sequence_across_tokens_is_cut() -> None:
    out, rest, stopped = run([b"one, two", b", thr", b"ee, four"], [", three"])
    assert "".join(out) == "one, two"
    assert stopped
    assert rest == ""


def test_the_stop_sequence_found_first_is_the_one_that_matched() -> None:
    stream = StopStream(["four", ", thr"])
    assert stream.feed(b"one, two, three, four") == "one, two"
    assert stream.matched == ", thr"
    assert StopStream(["x"]).matched is None


def test_partial_stop_is_released_when_it_does_not_complete() -> None:
    out, rest, stopped = run([b"a<", b"b"], ["<stop>"])
    assert out == ["a", "<b"]
    assert not stopped
    out, rest, stopped = run([b"a<st"], ["<stop>"])
    assert out == ["a"]
    assert (rest, stopped) == ("<st", False)


def test_first_of_several_stops_wins() -> None:
    out, _, stopped = run([b"x END y STOP"], ["STOP", "END"])
    assert out == ["x "]
    assert stopped
