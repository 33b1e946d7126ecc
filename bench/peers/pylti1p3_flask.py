"""The LTI 1.3 tool that pylti1p3's documentation shows: Flask, ``FlaskOIDCLogin`` and
``FlaskMessageLaunch``, Flask-Caching's simple cache as the launch-data storage, no database.

``bench/launch.py --peer`` serves it with gunicorn (one sync worker, the documented deployment)
and sends it the same launches it sends our tool. It is written the documented way with one
exception in its favour: the tool configuration is built once per process, not per request.
It does less than our tool (no single-use nonce store shared between processes, no learner
records, no journey); the benchmark reports both side by side and says so.

Configuration (written by the benchmark): ``PYLTI1P3_PEER_CONFIG`` names a JSON file
``{"issuer", "client_id", "deployment_id", "auth_login_url", "auth_token_url", "key_set",
"private_key_pem", "public_key_pem"}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import Flask
from flask_caching import Cache
from markupsafe import escape
from pylti1p3.contrib.flask import (
    FlaskCacheDataStorage,
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskRequest,
)
from pylti1p3.tool_config import ToolConfDict


def tool_configuration(config: dict[str, Any]) -> ToolConfDict:
    tool_conf = ToolConfDict(
        {
            config["issuer"]: [
                {
                    "default": True,
                    "client_id": config["client_id"],
                    "auth_login_url": config["auth_login_url"],
                    "auth_token_url": config["auth_token_url"],
                    "auth_audience": None,
                    "key_set_url": None,
                    "key_set": config["key_set"],
                    "deployment_ids": [config["deployment_id"]],
                }
            ]
        }
    )
    tool_conf.set_private_key(config["issuer"], config["private_key_pem"], config["client_id"])
    tool_conf.set_public_key(config["issuer"], config["public_key_pem"], config["client_id"])
    return tool_conf


def create_app() -> Flask:
    config = json.loads(Path(os.environ["PYLTI1P3_PEER_CONFIG"]).read_text())
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=config.get("secret_key", "pylti1p3-peer"),
        CACHE_TYPE="SimpleCache",
        CACHE_DEFAULT_TIMEOUT=600,
        SESSION_COOKIE_HTTPONLY=True,
    )
    cache = Cache(app)
    tool_conf = tool_configuration(config)

    @app.route("/lti/login", methods=["GET", "POST"])
    def login() -> Any:
        flask_request = FlaskRequest()
        target_link_uri = flask_request.get_param("target_link_uri")
        if not target_link_uri:
            return 'Missing "target_link_uri" param', 400
        oidc_login = FlaskOIDCLogin(
            flask_request, tool_conf, launch_data_storage=FlaskCacheDataStorage(cache)
        )
        return oidc_login.redirect(target_link_uri)

    @app.route("/lti/launch", methods=["POST"])
    def launch() -> Any:
        message_launch = FlaskMessageLaunch(
            FlaskRequest(), tool_conf, launch_data_storage=FlaskCacheDataStorage(cache)
        )
        data = message_launch.get_launch_data()
        name = data.get("name") or data.get("sub", "")
        return f"<!doctype html><title>Launched</title><h1>Hello {escape(name)}</h1>"

    @app.route("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.errorhandler(Exception)
    def refused(error: Exception) -> Any:
        # pylti1p3 raises LtiException for a refused launch: a 400 naming it, as the docs' example
        # shows it to the user, and never a 500 the load generator would mistake for a crash.
        return f"Launch refused: {escape(str(error))}", 400

    return app
