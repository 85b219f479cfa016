"""Where a deploy goes: one frozen value (emulator or AWS, stack, bucket, parameters) and its AWS clients."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from infra.stacklib.layout import ARTIFACT_BUCKET, ENDPOINT, LOCAL_API_ID, REGION, STACK_NAME


@dataclass(frozen=True)
class Target:
    """An emulator (`endpoint` set) or AWS (`endpoint` None, the default credential chain); `api_id` is the
    REST API id to pin ("" lets the emulator or AWS pick one); `parameters` are the stack's parameters besides
    DatabaseUrl and LocalApiId."""

    endpoint: str | None
    region: str
    emulator: bool
    stack: str
    api_id: str
    bucket: str
    parameters: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.emulator != bool(self.endpoint):
            raise ValueError("an emulator target needs its endpoint, an AWS target has none")
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))

    @classmethod
    def embedded(cls, parameters: Mapping[str, str] | None = None) -> Target:
        """The embedded stack: MiniStack on PIX_STACK_PORT, stack `pix-payouts`, the pinned API id."""
        return cls(
            endpoint=ENDPOINT,
            region=REGION,
            emulator=True,
            stack=STACK_NAME,
            api_id=LOCAL_API_ID,
            bucket=ARTIFACT_BUCKET,
            parameters=parameters or {},
        )

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint, self.region)

    def object_url(self, key: str) -> str:
        if self.emulator:
            return f"{self.endpoint}/{self.bucket}/{key}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{key}"


def aws_client(service: str, endpoint: str | None, region: str) -> Any:
    """A boto3 client on an emulator (any credentials) or, with no endpoint, on AWS (the default chain)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=120)
    if not endpoint:
        return boto3.client(service, region_name=region, config=config)
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 (emulators take any credentials)
        config=config,
    )
