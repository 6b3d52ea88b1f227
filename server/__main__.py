"""Run the hub: `python -m server [--host H] [--port P]`.

The async library is patched first, before Flask or the database driver are imported.
"""
from server import realtime

realtime.patch()

import argparse  # noqa: E402
import os  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="Điểm Cầu hub")
    parser.add_argument("--host", default=os.environ.get("DIEMCAU_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DIEMCAU_PORT", "5000")))
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from server import create_app

    app = create_app()
    print(f"Điểm Cầu hub on http://{args.host}:{args.port} ({realtime.mode()})", flush=True)
    realtime.serve(app, args.host, args.port, log_output=args.access_log)


if __name__ == "__main__":
    main()
