"""Microversions: parsing, comparing, and negotiating them from request headers.

Nova and Cinder share one algorithm (reference §b.4): the client names a version in
`OpenStack-API-Version: <service type> X.Y` (Nova also reads the legacy
`X-OpenStack-Nova-API-Version: X.Y`, and Mitaka reads only that one); no header means the
minimum; `latest` means the maximum; a malformed version is 400; one outside [min, max] is 406.
"""
import re
from dataclasses import dataclass
from typing import Callable

_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@dataclass(frozen=True, order=True)
class Microversion:
    major: int
    minor: int

    @staticmethod
    def parse(text: str) -> "Microversion":
        m = _VERSION_RE.match(text.strip())
        if not m:
            raise ValueError(f"API Version String {text} is of invalid format. "
                             "Must be of format MajorNum.MinorNum.")
        return Microversion(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class MicroversionSpec:
    """How one service reads microversions.

    service_type: the word in OpenStack-API-Version ("compute", "volume").
    path_prefix: only requests under it are versioned (Cinder honours the header on /v3 only).
    bounds: profile -> (min, max).
    legacy_header: Nova's X-OpenStack-Nova-API-Version, or None.
    new_header_honoured: profile -> whether OpenStack-API-Version is read (Mitaka Nova: no).
    """
    service_type: str
    path_prefix: str
    bounds: Callable
    legacy_header: str | None = None
    new_header_honoured: Callable = lambda profile: True

    def applies(self, path: str) -> bool:
        return path == self.path_prefix or path.startswith(self.path_prefix + "/")

    def requested(self, headers, profile) -> str | None:
        """The version string the client asked for, or None."""
        if self.new_header_honoured(profile):
            for item in headers.getall("OpenStack-API-Version", []):
                for part in item.split(","):
                    words = part.split()
                    if len(words) == 2 and words[0].lower() == self.service_type:
                        return words[1]
        if self.legacy_header:
            value = headers.get(self.legacy_header)
            if value:
                return value.strip()
        return None

    def negotiate(self, headers, profile) -> Microversion:
        """Raises ValueError (-> 400) or VersionNotAcceptable (-> 406)."""
        low, high = self.bounds(profile)
        asked = self.requested(headers, profile)
        if asked is None:
            return low
        if asked.lower() == "latest":
            return high
        version = Microversion.parse(asked)
        if not low <= version <= high:
            raise VersionNotAcceptable(
                f"Version {version} is not supported by the API. "
                f"Minimum is {low} and maximum is {high}.")
        return version

    def response_headers(self, version: Microversion, profile) -> dict:
        headers: dict[str, str] = {}
        vary = []
        if self.new_header_honoured(profile):
            headers["OpenStack-API-Version"] = f"{self.service_type} {version}"
            vary.append("OpenStack-API-Version")
        if self.legacy_header:
            headers[self.legacy_header] = str(version)
            vary.append(self.legacy_header)
        headers["Vary"] = ", ".join(vary)
        return headers


class VersionNotAcceptable(Exception):
    """A well-formed microversion outside the release's range (406)."""
