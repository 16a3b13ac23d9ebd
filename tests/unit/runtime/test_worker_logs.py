"""What a grpc worker that died without a result leaves in the error: its exit and its log."""

import signal

from veil.runtime.simulate import _died_message, _log_tail


def test_tail_keeps_the_last_lines(tmp_path):
    log = tmp_path / "bob.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert _log_tail(log, lines=3) == "line 97\nline 98\nline 99"


def test_tail_of_a_huge_log_reads_only_its_end_and_drops_the_cut_line(tmp_path):
    log = tmp_path / "bob.log"
    log.write_bytes(b"x" * 1_000_000 + b"\nlast words\n")
    assert _log_tail(log, max_bytes=100) == "last words"


def test_tail_survives_bad_bytes_and_missing_files(tmp_path):
    log = tmp_path / "bob.log"
    log.write_bytes(b"caf\xe9 closed\n")
    assert _log_tail(log) == "caf\ufffd closed"
    assert _log_tail(tmp_path / "absent.log") == ""


def test_died_message_names_the_signal_or_code_and_shows_the_tail(tmp_path):
    log = tmp_path / "bob.log"
    log.write_text("Fatal Python error: Segmentation fault\n")
    msg = _died_message(-signal.SIGSEGV, log)
    assert msg.startswith("process killed by SIGSEGV without a result")
    assert msg.endswith("Fatal Python error: Segmentation fault")
    empty = tmp_path / "carol.log"
    empty.write_text("")
    assert (
        _died_message(137, empty)
        == "process exited with code 137 without a result (it printed nothing)"
    )
    assert "VEIL_DEBUG" in _died_message(1, None)
