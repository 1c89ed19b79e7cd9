"""Attribute a request to a market/region: a trusted header, else an IP-range map, else
the installation default. Licences restrict where an organization may use the API."""

from __future__ import annotations

import ipaddress
import re

__all__ = ["RegionResolver"]

_REGION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}$")


class RegionResolver:
    """Resolves the region of one request; IP look-ups are memoised (bounded)."""

    def __init__(
        self,
        *,
        header: str | None,
        ip_regions: dict[str, str],
        default: str,
        max_memo: int = 65_536,
    ) -> None:
        self.header = header.lower().encode("latin-1") if header else None
        self.networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
        for cidr, region in ip_regions.items():
            try:
                self.networks.append((ipaddress.ip_network(cidr, strict=False), region))
            except ValueError as exc:
                raise ValueError(
                    f"ip_regions: {cidr!r} is not a CIDR range (e.g. 203.0.113.0/24)"
                ) from exc
        self.default = default
        self._memo: dict[str, str] = {}
        self._max_memo = max_memo

    def from_header(self, value: bytes) -> str | None:
        """The region named by the header, or None when it is not a plausible region code."""
        try:
            text = value.decode("ascii").strip()
        except UnicodeDecodeError:
            return None
        return text if _REGION_RE.match(text) else None

    def from_ip(self, ip: str | None) -> str:
        """The first configured range containing ``ip``, else the default region."""
        if not ip or not self.networks:
            return self.default
        hit = self._memo.get(ip)
        if hit is not None:
            return hit
        region = self.default
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            addr = None
        if addr is not None:
            for net, name in self.networks:
                if addr.version == net.version and addr in net:
                    region = name
                    break
        if len(self._memo) >= self._max_memo:
            self._memo.clear()
        self._memo[ip] = region
        return region
