from __future__ import annotations

import pytest

from clickstream.enrich import device_from_user_agent, truncate_ip
from tests.factories import user_agents


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("192.168.1.1", "192.168.1.0"),
        ("8.8.4.4, 10.0.0.1", "8.8.4.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("not an ip", None),
        (None, None),
    ],
)
def test_truncate_ip_keeps_only_the_network(raw, kept):
    assert truncate_ip(raw) == kept


@pytest.mark.parametrize(
    ("name", "device_type", "platform", "browser"),
    [
        ("iphone_safari", "mobile", "iOS", "Mobile Safari"),
        ("windows_chrome", "desktop", "Windows", "Chrome"),
        ("ipad_safari", "tablet", "iOS", "Mobile Safari"),
        ("android_chrome", "mobile", "Android", "Chrome Mobile"),
        ("googlebot", "bot", None, "Googlebot"),
    ],
)
def test_device_from_user_agent(name, device_type, platform, browser):
    device = device_from_user_agent(user_agents()[name])
    assert (device.device_type, device.platform, device.browser) == (device_type, platform, browser)
