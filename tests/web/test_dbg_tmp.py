from test_pages import *

def test_dbg(app, ids):
    client = login_staff(make_client(app), "btc-huyen2")
    r = client.post(f"/exams/{ids.exam}/open")
    print(r.status_code, re.findall(r'data-code="[^"]*">[^<]*', r.get_data(as_text=True)))
    print(page(client, "/exams/")[:300])
