"""The design CaptchaOCR started from, kept as the benchmark's comparison point: one FastAPI process
calling ddddocr directly in the request (default ONNX threads), first 4 digits of its text.

    python -m bench.seed_app --port 8500
"""

from __future__ import annotations

import argparse
import base64

import ddddocr
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI()
ocr = ddddocr.DdddOcr(show_ad=False)


class Body(BaseModel):
    image_base64: str


@app.post("/ocr")
def read(body: Body) -> dict:
    digits = "".join(c for c in ocr.classification(base64.b64decode(body.image_base64)) if c.isdigit())[:4]
    if len(digits) < 4:
        raise HTTPException(422, "fewer than 4 digits found")
    return {"number": int(digits), "text": digits}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8500)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, access_log=False, log_level="warning")
