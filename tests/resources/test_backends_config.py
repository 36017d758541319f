"""The Braket results location (HYBRID_BRAKET_S3_DESTINATION): every documented form becomes the
plugin's (bucket, prefix); anything else is refused with the accepted forms named."""

from __future__ import annotations

import pytest

from hybrid_assets.resources import hardware_backend_from_env
from hybrid_resources.quantum.backends import BackendConfig, _device_kwargs

FORTE = "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1"


def braket_kwargs(monkeypatch: pytest.MonkeyPatch, destination: str) -> dict:
    """The device kwargs of the hardware backend built from the environment, as make_device gets them."""
    monkeypatch.setenv("HYBRID_BRAKET_DEVICE_ARN", FORTE)
    monkeypatch.setenv("HYBRID_BRAKET_S3_DESTINATION", destination)
    return _device_kwargs(hardware_backend_from_env().process_config_and_initialize().backend_config())


@pytest.mark.parametrize(("destination", "folder"), [
    ("s3://my-bucket/braket", ("my-bucket", "braket")),  # deploy/env/production.env.example's form
    ("my-bucket/braket", ("my-bucket", "braket")),  # the README's form
    ("s3://my-bucket/braket/runs/", ("my-bucket", "braket/runs")),
    ("S3://my-bucket/braket", ("my-bucket", "braket")),
    (" my-bucket/braket ", ("my-bucket", "braket")),
    ("s3://my-bucket", ("my-bucket", "pennylane")),
    ("s3://my-bucket/", ("my-bucket", "pennylane")),
    ("my-bucket", ("my-bucket", "pennylane")),
])
def test_every_documented_form_becomes_the_plugins_bucket_and_prefix(monkeypatch, destination, folder):
    kwargs = braket_kwargs(monkeypatch, destination)
    assert kwargs["s3_destination_folder"] == folder
    assert kwargs["device_arn"] == FORTE


@pytest.mark.parametrize("destination", [
    "gs://my-bucket/braket", "https://my-bucket.s3.amazonaws.com/braket", "s3:///braket", "/braket", "s3://",
    "s3:/my-bucket/braket", "my bucket/braket",
])
def test_a_malformed_location_is_refused_naming_the_accepted_forms(monkeypatch, destination):
    with pytest.raises(ValueError, match=r"must be 's3://bucket/prefix', 'bucket/prefix' or 'bucket'"):
        braket_kwargs(monkeypatch, destination)


def test_the_plain_config_refuses_too_and_other_devices_pass_options_through():
    with pytest.raises(ValueError, match="HYBRID_BRAKET_S3_DESTINATION"):
        _device_kwargs(BackendConfig(device_name="braket.aws.qubit", shots=10,
                                     device_options=(("s3_destination_folder", ""),)))
    local = BackendConfig(device_name="braket.local.qubit", device_options=(("s3_destination_folder", "s3://b/p"),))
    assert _device_kwargs(local)["s3_destination_folder"] == ("b", "p")
    # Not a Braket device: the option is not the plugin's, so it is passed as given.
    other = BackendConfig(device_name="default.qubit", device_options=(("s3_destination_folder", "gs://b/p"),))
    assert _device_kwargs(other)["s3_destination_folder"] == "gs://b/p"
