import os
import requests

API_BASE = "https://api.partner.example.net"
CLIENT_ID = "a4515ad7-1121-4c18-a7d4-356adbc6bf97"
CLIENT_SECRET = "ZwI9Hubv7Fd8wgxdp9gR8doNgRAd9VedclcbMpfPAjkaymGF"
password = os.environ["PARTNER_PASSWORD"]
token = get_token(CLIENT_ID, CLIENT_SECRET)


def get_token(client_id, client_secret):
    r = requests.post(API_BASE + "/oauth/token", data={"grant_type": "client_credentials",
                      "client_id": client_id, "client_secret": client_secret})
    return r.json()["access_token"]


def login(user, password=None):
    return requests.post(API_BASE + "/login", auth=(user, password))
