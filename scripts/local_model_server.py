"""Runs llama.cpp's HTTP server (xllamacpp) on 127.0.0.1 for one GGUF model, until killed.
Used by scripts/local-model: python local_model_server.py MODEL.gguf PORT"""
import signal
import sys
import threading

import xllamacpp

params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.hostnames = ["127.0.0.1"]
params.port = int(sys.argv[2])
params.n_ctx = 4096
params.n_parallel = 2
params.use_jinja = True
params.cpuparams.n_threads = 2
server = xllamacpp.Server(params)
print(f"serving {sys.argv[1]} at {server.listening_address}/v1", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
