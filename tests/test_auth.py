"""The chief's token: where it comes from, when it is required, and that a call without it is refused and logged."""

from __future__ import annotations

import json
from types import SimpleNamespace

import grpc
import pytest

from ablation.engine import auth, cluster, heartbeat

TOKEN = "s3cret-token-0123456789"


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("203.0.113.7", False),
])
def test_is_loopback(host, loopback):
    assert auth.is_loopback(host) is loopback


def test_a_chief_off_loopback_requires_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    with pytest.raises(ValueError) as info:
        auth.chief_token("0.0.0.0", None, tmp_path)
    assert str(info.value) == (
        "Invalid value for argument 'token': expected a token for a chief listening on 0.0.0.0, which is not a "
        "loopback address (--token TOKEN, ABLATION_TOKEN=TOKEN, or --token generate to keep a new one in the run "
        "folder's run.json). Received: token=None")
    assert auth.chief_token("127.0.0.1", None, tmp_path) == (None, False)   # loopback: none needed
    assert auth.chief_token("0.0.0.0", TOKEN, tmp_path) == (TOKEN, False)
    monkeypatch.setenv(auth.TOKEN_ENV, TOKEN)
    assert auth.chief_token("0.0.0.0", None, tmp_path) == (TOKEN, False)
    assert auth.chief_token("127.0.0.1", None, tmp_path) == (TOKEN, False)  # given: checked on loopback too
    with pytest.raises(ValueError, match=r"Received: token=<5 characters>$"):
        auth.chief_token("0.0.0.0", "short", tmp_path)   # the message does not repeat the token


def test_generate_keeps_one_token_in_run_json_that_workers_find(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    (tmp_path / "run.json").write_text(json.dumps({"hash": "abc"}))
    token, generated = auth.chief_token("0.0.0.0", "generate", tmp_path)
    assert generated and len(token) >= 40 and auth.check_token(token) == token
    assert auth.worker_token(None, tmp_path) is None
    auth.keep(tmp_path, token)
    assert json.loads((tmp_path / "run.json").read_text()) == {"hash": "abc", "token": token}
    assert auth.chief_token("0.0.0.0", "generate", tmp_path) == (token, False)  # a resumed run keeps it
    assert auth.worker_token(None, tmp_path) == token                           # a worker sharing the folder
    monkeypatch.setenv(auth.TOKEN_ENV, TOKEN)
    assert auth.worker_token(None, tmp_path) == TOKEN                           # the environment first
    assert auth.worker_token("other-token-0123456789", tmp_path) == "other-token-0123456789"


def test_the_recorded_command_line_hides_the_token():
    argv = ["chief", "s.toml", "--token", TOKEN, "--host", "0.0.0.0"]
    assert auth.redact(argv) == ["chief", "s.toml", "--token", "***", "--host", "0.0.0.0"]
    assert auth.redact([f"--token={TOKEN}", "--token", "generate"]) == ["--token=***", "--token", "generate"]


def _chief(token, lines):
    oracle = SimpleNamespace(ongoing_trials={}, trials={})
    return cluster.Chief(oracle, "127.0.0.1", 0, token=token, say=lines.append)


def _heartbeat(address, md=()):
    channel = grpc.insecure_channel(address)
    call = channel.unary_unary(heartbeat.METHOD, request_serializer=heartbeat._encode,
                               response_deserializer=heartbeat._decode)
    try:
        return call({"worker": "w1", "trials": []}, timeout=10, metadata=list(md))
    finally:
        channel.close()


def test_calls_without_the_token_are_refused_and_logged(monkeypatch):
    lines: list[str] = []
    chief = _chief(TOKEN, lines)
    address = f"127.0.0.1:{chief.port}"
    try:
        for md, why in (([], "no token"), ([(auth.TOKEN_KEY, "wrong-token-0123456789")], "a wrong token")):
            with pytest.raises(grpc.RpcError) as info:
                _heartbeat(address, md + [(auth.WORKER_KEY, "w1")])
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert lines == ["refused a call to Heartbeat from ipv4:127.0.0.1 (worker 'w1'): no token"]  # then counted
        monkeypatch.setattr(auth, "LOG_EVERY_S", 0.0)
        from keras_tuner.src import protos

        stub = protos.get_service_grpc().OracleStub(grpc.insecure_channel(address))
        with pytest.raises(grpc.RpcError) as info:   # keras-tuner's own service is guarded too
            stub.GetSpace(protos.get_service().GetSpaceRequest(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert lines[-1] == "refused a call to GetSpace from ipv4:127.0.0.1: no token (1 more refused since the last line)"
        assert chief.heartbeats.seen == {}   # refused calls are no sign of life
        reply = _heartbeat(address, [(auth.TOKEN_KEY, TOKEN), (auth.WORKER_KEY, "w1")])
        assert reply == {"grace": heartbeat.HEARTBEAT_GRACE, "held": [], "lost": [], "presumed_dead": False}
        assert set(chief.heartbeats.seen) == {"w1"}
        # a worker's channel carries the token and its id with every call
        beat = heartbeat.Beat(auth.channel(address, TOKEN, "w2"), "w2", lambda: [], lines.append)
        assert beat.keep(["7"], timeout=10) == set() and set(chief.heartbeats.seen) == {"w1", "w2"}
    finally:
        chief.stop()
    assert TOKEN not in "\n".join(lines)


def test_a_chief_without_a_token_takes_calls_without_one():
    lines: list[str] = []
    chief = _chief(None, lines)
    try:
        assert _heartbeat(f"127.0.0.1:{chief.port}")["grace"] == heartbeat.HEARTBEAT_GRACE
    finally:
        chief.stop()
    assert lines == []


def test_the_cli_refuses_a_chief_off_loopback_without_a_token_before_binding(tmp_path, monkeypatch, capsys):
    from ablation.engine import preflight
    from ablation.cli import main

    from conftest import TINY_STUDY

    def no_bind(*args, **kwargs):
        raise AssertionError("the chief got as far as binding an address")

    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    monkeypatch.setattr(cluster, "check_address", no_bind)
    monkeypatch.setattr(cluster, "serve", no_bind)
    monkeypatch.setattr(preflight, "check", no_bind)
    study = tmp_path / "tiny.toml"
    study.write_text(TINY_STUDY)
    for command in (["chief"], ["run", "--no-report"]):
        assert main([command[0], str(study), "--out", str(tmp_path / "runs"), "--host", "0.0.0.0", *command[1:]]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: Invalid value for argument 'token': expected a token for a chief listening on "
                              "0.0.0.0") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()
