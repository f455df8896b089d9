"""Real 123pan clients from PyPI, unmodified, against the 123pan simulator (issue 13).

Each client is pinned in requirements-dev.txt and driven through its public API only, its base URL pointed at the
simulator where the client takes one. Where a client hard-codes https://open-api.123pan.com, the test gives it an
httpx transport (ToSimulator) that delivers requests for that host to the simulator, as a hosts-file entry would:
what the client sends is unchanged. Each such test's docstring cites the client code that needs it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import httpx_request
import p123client.client
import pytest
import urllib3
from cpan123 import Auth, Share
from p123client import P123OpenClient, check_response
from p123client.exception import P123Warning
from py_123pan_client import PanClient

from local.simulators.base import Recorded
from local.simulators.pan123 import FIRST_USER_ID, Pan123Simulator

CLIENT_ID, CLIENT_SECRET = "sim-client", "sim-secret"
OPEN_API_HOST = "open-api.123pan.com"
TOKEN = ("POST", "/api/v1/access_token")
CREATE = ("POST", "/api/v1/share/create")
LIST = ("GET", "/api/v1/share/list")
UPDATE = ("PUT", "/api/v1/share/list/info")
ROOT = Path(__file__).resolve().parents[2]
# p123client's own way of posting bytes (http_request.normalize_request_args passes them to httpx as data=).
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")


class ToSimulator(httpx.HTTPTransport):
    """Delivers requests for https://open-api.123pan.com to the simulator and refuses any other host but its own."""

    def __init__(self, sim_url: str) -> None:
        super().__init__()
        self.sim_url = httpx.URL(sim_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == OPEN_API_HOST:
            request.url = request.url.copy_with(scheme="http", host=self.sim_url.host, port=self.sim_url.port)
        elif (request.url.host, request.url.port) != (self.sim_url.host, self.sim_url.port):
            raise httpx.ConnectError(f"no network in this test: {request.url.host}", request=request)
        return super().handle_request(request)


@pytest.fixture
def sim() -> Iterator[Pan123Simulator]:
    with Pan123Simulator(clients={CLIENT_ID: CLIENT_SECRET}) as simulator:
        yield simulator


def calls(sim: Pan123Simulator) -> list[tuple[str, str]]:
    return [(request.method, request.path) for request in sim.requests]


def content_type(request: Recorded) -> str:
    return next(value for name, value in request.headers.items() if name.lower() == "content-type")


def token_expiry(token: str) -> int:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def test_installing_the_clients_left_urllib3_as_the_layer_pins_it() -> None:
    """p123client needs urllib3.future, whose wheel replaces urllib3 in the whole venv (see requirements-dev.txt)."""
    pins = (ROOT / "layers" / "sharelink" / "requirements.txt").read_text()
    pinned = re.search(r"^urllib3==(\S+)$", pins, re.MULTILINE)
    assert pinned is not None
    assert urllib3.__version__ == pinned.group(1)


# --- py-123pan-client 0.1.15: PanClient takes base_url, no workaround


def test_py_123pan_client_creates_lists_and_updates_a_share(sim: Pan123Simulator) -> None:
    with PanClient(CLIENT_ID, CLIENT_SECRET, base_url=sim.url) as client:
        created = client.create_share("py-123pan-client", [1, 2], expire_days=7, pwd="ab12", traffic_switch=2)
        (listed,) = client.list_shares(limit=10).share_list
        assert client.update_shares_traffic(
            [created.share_id], traffic_switch=4, traffic_limit_switch=2, traffic_limit=9
        )
        (updated,) = client.list_shares(limit=10).share_list

    assert (listed.share_id, listed.share_key, listed.share_name) == (
        created.share_id,
        created.share_key,
        "py-123pan-client",
    )
    assert (listed.share_pwd, listed.traffic_switch, listed.expired) == ("ab12", 2, 0)
    assert (updated.traffic_switch, updated.traffic_limit_switch, updated.traffic_limit) == (4, 2, 9)
    assert calls(sim) == [TOKEN, CREATE, LIST, UPDATE, LIST]
    assert content_type(sim.requests[0]) == "application/json"


# --- p123client 0.0.9.4


def test_p123client_logs_in_creates_and_updates_a_share(sim: Pan123Simulator) -> None:
    """P123OpenClient.share_create lower-cases every key it sends (dict_key_to_lower_merge in p123client/client.py)."""
    client = P123OpenClient()
    client.login(CLIENT_ID, CLIENT_SECRET, base_url=sim.url)
    payload = {"shareName": "p123client", "fileIDList": "1,2", "shareExpire": 7, "sharePwd": "pw"}
    created = check_response(client.share_create(payload, base_url=sim.url))["data"]
    check_response(client.share_edit({"shareIdList": [created["shareID"]], "trafficSwitch": 3}, base_url=sim.url))

    share = sim.shares[created["shareID"]]
    assert (share["shareKey"], share["shareName"], share["sharePwd"]) == (created["shareKey"], "p123client", "pw")
    assert (share["shareExpire"], share["fileIds"], share["trafficSwitch"]) == (7, [1, 2], 3)
    assert set(sim.requests[1].body) == {"sharename", "fileidlist", "shareexpire", "sharepwd"}
    assert client.user_id == FIRST_USER_ID  # read from the token's JWT payload
    assert calls(sim) == [TOKEN, CREATE, UPDATE]


def test_p123client_logs_in_again_when_its_token_expired(sim: Pan123Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """On code 401, P123OpenClient.request (p123client/client.py) calls `self.login(replace=True, async_=async_)`
    without a base_url, so P123OpenClient.login asks P123OpenClient.login_token for a token at its default
    DEFAULT_OPEN_BASE_URL, "https://open-api.123pan.com". login_token sends through the module's
    get_default_request(); the test makes that send through ToSimulator (the other calls name the simulator)."""
    to_simulator = httpx.Client(transport=ToSimulator(sim.url), timeout=5)
    monkeypatch.setattr(
        p123client.client, "get_default_request", lambda: partial(httpx_request.request, session=to_simulator)
    )
    client = P123OpenClient()
    client.login(CLIENT_ID, CLIENT_SECRET, base_url=sim.url)
    expired = client.token
    sim.expire_tokens()

    with pytest.warns(P123Warning, match=f"user_id={FIRST_USER_ID}"):
        created = client.share_create({"shareName": "again", "fileIDList": "3", "shareExpire": 1}, base_url=sim.url)
    to_simulator.close()

    assert check_response(created)["data"]["shareID"] in sim.shares
    assert client.token != expired
    assert sim.live_tokens() == [client.token]
    assert calls(sim) == [TOKEN, CREATE, TOKEN, CREATE]


# --- cpan123 0.2.15


def test_cpan123_logs_in_creates_lists_and_updates_a_share(sim: Pan123Simulator, tmp_path: Path) -> None:
    """cpan123 has no base URL setting: cpan123/utils/Constants.py builds every endpoint (API.JWT.TOKEN,
    API.SharePath.CREATE, ...) from API_BASE = "https://open-api.123pan.com" at import. Every call goes through
    the httpx.Client in Auth's `session` attribute (made by Jwt._create_client in cpan123/authtype/Jwt.py, used by
    Jwt._do_request), so the test swaps that session for one with the same headers that sends through ToSimulator.
    Jwt._fetch_token posts the credentials form-encoded (`data=`)."""
    env_file = tmp_path / ".env.123"
    env_file.write_text(f"CLIENT_ID={CLIENT_ID}\nCLIENT_SECRET={CLIENT_SECRET}\n")
    auth = Auth(envpath=str(env_file))
    auth.session.close()
    auth.session = httpx.Client(headers=auth.session.headers, transport=ToSimulator(sim.url), timeout=5)
    share = Share(auth)

    created = share.share_create(shareName="cpan123", shareExpire=7, fileIDList="1,2", sharePwd="pw")["data"]
    listed = share.share_list(limit=10)["data"]
    changed = share.share_change(
        shareIdList=[created["shareID"]], trafficSwitch=4, trafficLimitSwitch=2, trafficLimit=7
    )
    (item,) = share.share_list(limit=10)["data"]["shareList"]
    auth.session.close()

    assert listed["lastShareId"] == -1
    assert [(entry["shareId"], entry["shareKey"]) for entry in listed["shareList"]] == [
        (created["shareID"], created["shareKey"])
    ]
    assert (changed["code"], item["shareName"], item["sharePwd"]) == (0, "cpan123", "pw")
    assert (item["trafficSwitch"], item["trafficLimitSwitch"], item["trafficLimit"]) == (4, 2, 7)
    assert calls(sim) == [TOKEN, CREATE, LIST, UPDATE, LIST]
    assert content_type(sim.requests[0]) == "application/x-www-form-urlencoded"
    assert sim.live_tokens() == [auth.access_token]
    assert auth.expires_at == token_expiry(auth.access_token)  # cpan123 takes the expiry from the JWT's exp
