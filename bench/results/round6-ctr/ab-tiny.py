#!/usr/bin/python3
# A/B: tiny containerd container dump+restore, alternating two builds.
# usage: ab-tiny.py OLD_CRYO NEW_CRYO [RUNS]   (namespace "tiny" must hold
# the test image: tests/lib/images.sh img_ensure_containerd tiny)
import json, subprocess, sys, time, statistics, shutil, os
builds = {"old": sys.argv[1], "new": sys.argv[2]}
N = int(sys.argv[3]) if len(sys.argv) > 3 else 10
img = "docker.io/cryo-test/busybox:1"; ns = "tiny"
def sh(*a, check=True): return subprocess.run(a, check=check, capture_output=True, text=True)
def rm(id):
    sh("ctr","-n",ns,"tasks","kill","-s","KILL",id, check=False); time.sleep(0.15)
    sh("ctr","-n",ns,"tasks","rm","-f",id, check=False); sh("ctr","-n",ns,"containers","rm",id, check=False)
res = {k: {"dump": [], "restore": [], "frozen": [], "criu_dump": [], "task": []} for k in builds}
for i in range(N):
    for name in (list(builds) if i % 2 == 0 else list(builds)[::-1]):
        cryo = builds[name]; id = f"ab{i}{name}"
        sh("ctr","-n",ns,"run","-d",img,id,"/bin/sleep","1000"); time.sleep(0.3); os.sync()
        t0 = time.monotonic(); p = sh(cryo,"dump","--type","containerd","--namespace",ns,"--id",id,"--dir","/var/lib/tinyck","--json"); t1 = time.monotonic()
        d = json.loads(p.stdout); ph = d["stats"]["phases"]
        rm(id); os.sync()
        t2 = time.monotonic(); r = sh(cryo,"restore","--type","containerd","--checkpoint-dir",d["path"],"--json"); t3 = time.monotonic()
        rj = json.loads(r.stdout)
        res[name]["dump"].append((t1-t0)*1000); res[name]["restore"].append((t3-t2)*1000)
        res[name]["frozen"].append(ph.get("frozen",{}).get("usec",0)/1000); res[name]["criu_dump"].append(ph["criu_dump"]["usec"]/1000)
        res[name]["task"].append(rj["stats"]["phases"]["restore"]["usec"]/1000)
        rm(id); shutil.rmtree(d["path"])
for name, m in res.items():
    print(name, " ".join(f"{k}={statistics.median(v):.1f}" for k, v in m.items()))
