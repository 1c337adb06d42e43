import sys, time
sys.path.insert(0, "tests")
from apptest_helpers import open_app_page
import os, tempfile
os.environ["AE_LAB_CHECKPOINTS"] = tempfile.mkdtemp()
t0=time.time()
at = open_app_page("views/experiments.py")
print("first run", time.time()-t0)
print([e.value for e in at.error], [w.value for w in at.warning])
print([m.value for m in at.markdown][:8])
print([c.value for c in at.caption][:8])
for i in range(20):
    time.sleep(1); at.run()
    md=" ".join(m.value for m in at.markdown)
    if "about" in md: break
print(i, [m.value for m in at.markdown if "runs" in m.value])
at.selectbox(key="exp_preset").set_value("custom").run()
at.multiselect(key="exp_vary").set_value(["model.hidden","train.optimizer"]).run()
print([e.value for e in at.error], [i.value for i in at.info])
print(at.main.get_by_key("exp_plan").dataframe[0].value)
