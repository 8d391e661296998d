"""Signs fixed requests with the official Huawei Cloud SDK's signer
(huaweicloudsdkcore.signer.Signer, SDK-HMAC-SHA256) and prints, per request,
the Authorization header and the URI the SDK would send, as JSON. The Rust
test (tests/conformance_huawei.rs) signs the same requests with keysmith's
signer and compares byte for byte.

    huawei_sign.py '<json list of cases>'

A case: {"ak", "sk", "method", "host", "path", "query": [[k, v]...],
"headers": {name: value}, "body": str or null}.
"""

import json
import sys

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer


def sign(case):
    body = case["body"]
    request = SdkRequest(
        method=case["method"],
        schema="https",
        host=case["host"],
        resource_path=case["path"],
        query_params=[tuple(pair) for pair in case["query"]],
        header_params=dict(case["headers"]),
        body=body.encode("utf-8") if body is not None else None,
    )
    signed = Signer(BasicCredentials(case["ak"], case["sk"])).sign(request)
    return {"authorization": signed.header_params["Authorization"], "uri": signed.uri}


def main():
    cases = json.loads(sys.argv[1])
    print(json.dumps([sign(case) for case in cases]))


if __name__ == "__main__":
    main()
