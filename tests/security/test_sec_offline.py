"""Issue 11 §6: the offline guard covers UDP, the low-level socket API and DNS, sets the
Hugging Face switch even after the library was imported, and `doctor` tells the truth."""

from __future__ import annotations

import _socket
import importlib
import socket
import sys

import pytest

from agent.foundation import offline
from agent.foundation.errors import NetworkRefused

REMOTE = ("192.0.2.1", 9)  # TEST-NET-1: never routed, so even a leak would go nowhere


def test_udp_sendto_and_sendmsg_are_refused(guard: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(NetworkRefused):
            udp.sendto(b"x", REMOTE)
        with pytest.raises(NetworkRefused):
            udp.sendto(b"x", 0, REMOTE)
        with pytest.raises(NetworkRefused):
            udp.sendmsg([b"x"], [], 0, REMOTE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as local:
        local.bind(("127.0.0.1", 0))
        local.sendto(b"ok", local.getsockname())  # loopback stays allowed
        assert local.recv(10) == b"ok"
    assert len(offline.attempts) == 3


def test_the_low_level_socket_api_is_guarded(guard: None) -> None:
    raw = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkRefused):
            raw.connect(("93.184.216.34", 443))
        with pytest.raises(NetworkRefused):
            raw.connect_ex(("93.184.216.34", 443))
    finally:
        raw.close()
    raw_udp = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkRefused):
            raw_udp.sendto(b"x", REMOTE)
    finally:
        raw_udp.close()


def test_name_resolution_is_refused_but_local_names_resolve(guard: None) -> None:
    for call in (lambda: socket.getaddrinfo("example.com", 443),
                 lambda: _socket.getaddrinfo("example.com", 443),
                 lambda: socket.gethostbyname("example.com"),
                 lambda: socket.gethostbyname_ex("example.com"),
                 lambda: socket.create_connection(("example.com", 80), timeout=1)):
        with pytest.raises(NetworkRefused, match="name lookup"):
            call()
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_hub_switch_is_set_even_when_the_hub_was_imported_first(
        guard: None, monkeypatch: pytest.MonkeyPatch) -> None:
    offline.disable()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    import huggingface_hub.constants as constants

    constants = importlib.reload(constants)  # imported while online: the constant is False
    assert constants.HF_HUB_OFFLINE is False
    offline.enable()
    assert sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE is True
    import huggingface_hub

    assert huggingface_hub.constants.is_offline_mode()
    with offline.allowed():
        assert not huggingface_hub.constants.is_offline_mode()
    assert huggingface_hub.constants.is_offline_mode()


def test_doctor_reports_a_gap_instead_of_claiming_blocked(
        guard: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.cli import doctor

    assert doctor.check_offline().ok
    monkeypatch.setattr(socket.socket, "sendto", offline._original["sendto"])  # a hole
    check = doctor.check_offline()
    assert not check.ok and "socket.socket.sendto" in check.detail
    monkeypatch.undo()
    offline.enable()
    monkeypatch.setattr(socket, "getaddrinfo", offline._original_resolvers[("socket", "getaddrinfo")])
    check = doctor.check_offline()
    assert not check.ok and "socket.getaddrinfo" in check.detail
    assert offline.attempts == []  # probing records nothing
