"""The pure parts of the socket limits: the token bucket, what an address counts as, a frame's size."""

from __future__ import annotations

from live.limits import TokenBucket, address_key, frame_size


def test_the_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=2, burst=3)
    start = bucket.at
    assert [bucket.take(start) for _ in range(4)] == [True, True, True, False]
    # half a second at 2 a second earns one frame, not two
    assert bucket.take(start + 0.5)
    assert not bucket.take(start + 0.5)
    # a long silence refills the burst, never beyond it
    assert [bucket.take(start + 100) for _ in range(4)] == [True, True, True, False]


def test_addresses_count_per_ipv4_address_and_per_ipv6_64():
    assert address_key(["203.0.113.7", 1234]) == "203.0.113.7"
    assert address_key(("2001:db8:1:2::1", 1)) == address_key(("2001:db8:1:2:ffff::9", 2)) == "2001:db8:1:2::/64"
    assert address_key(("2001:db8:1:3::1", 1)) != address_key(("2001:db8:1:2::1", 1))
    # an IPv4 client on a dual-stack socket is the IPv4 address
    assert address_key(("::ffff:203.0.113.7", 1)) == "203.0.113.7"
    # unknown: not capped
    assert address_key(None) is None
    assert address_key(("", 0)) is None


def test_a_frames_size_is_its_utf8_bytes():
    assert frame_size("abc", None) == 3
    assert frame_size("é€", None) == 5
    assert frame_size(None, b"\0" * 7) == 7
    assert frame_size(None, None) == 0
