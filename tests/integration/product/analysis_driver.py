from gevent import monkey; monkey.patch_all()  # noqa: E702 - as run.py: the call process is patched
"""The call process in a fresh interpreter for test_analysis_process: the product as run.py builds it, the
sample history, one training and one hotspot scan asked of its analysis process, then a new ticket's dispatch
form fetched as the centre; prints one JSON line: what the form showed and which modules this process holds.

    python -m tests.integration.product.analysis_driver DATABASE_URL VAR_DIR SOUNDS_DIR
"""
import datetime as dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402


def main(database_url: str, var_dir: str, sounds_dir: str) -> dict:
    from core.config import load_config
    from core.db import database
    from hotline.product import Product
    from stats import sample_tickets as st

    config = load_config({"database_url": database_url, "var_dir": var_dir, "sounds_dir": sounds_dir,
                          "esl": "127.0.0.1:9:unused", "outbound": "127.0.0.1:0", "http": "127.0.0.1:0",
                          "mode": "test", "secret_key": "k" * 40, "load_demo": True})
    product = Product(config).build()
    product.start()
    try:
        with database.connection_context():
            town = st.install()
            st.closed_history(st.sample(360, seed=14), town, start=dt.datetime(2026, 1, 1, 1, 0),
                              step=dt.timedelta(minutes=30))
        trained = product.parts["analysis_client"].request("train", timeout=300, ready_wait=30)["status"]
        scan = product.parts["hotspots"].run()
        from caseflow import services
        from caseflow.models import User

        with database.connection_context():
            agent = User.get(User.operator_no == "1001")
            ticket = services.create_ticket("市民来电反映：幸福小区从早上开始停水，一直没有来水。", title="停水",
                                            region=town["regions"]["R-DH-XFJD"], created_by=agent,
                                            clock=product.clock)
        client = product.parts["web_app"].test_client()
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"operator_no": "9001", "password": "demo1234", "csrf_token": token})
        html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
        if "--debug" in sys.argv:
            print(html[html.find("learned") - 2000:html.find("learned") + 1500], file=sys.stderr)
        block = (html.split('data-testid="learned-suggestion"', 1)[1:] or [""])[0].split("</div>")[0]
        water = town["departments"]["SW"].id
        return {"trained": trained, "raised": len(scan.raised), "choices": block.count("<li"),
                "water_first": f'data-department="{water}"' in (block.split("<li")[1:] or [""])[0],
                "jieba": "jieba" in sys.modules, "sklearn": "sklearn" in sys.modules}
    finally:
        product.stop(drain_timeout=1)


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])), flush=True)
