"""Removes each release gate once and checks that tests/leaks.rs catches it.

Run it in a scratch checkout (it edits files and restores them):

    git worktree add /tmp/gates HEAD && python3 scripts/gate_removal.py /tmp/gates

Each line says CAUGHT (some leak test failed without the gate) or MISSED.
The patterns are the gates' source lines; when the code moves, update them.
"""
import subprocess, sys
root = sys.argv[1] if len(sys.argv) > 1 else '.'
gates = [
 ("eligibility at reference, not now (run)", "src/engine.rs",
  "        let (bits, count) = self.with_mask(seg.purpose(), seg.data_use(), now, |mask, n| {",
  "        let (bits, count) = self.with_mask(seg.purpose(), seg.data_use(), reference, |mask, n| {"),
 ("release_rows does not re-apply the mask", "src/engine.rs",
  "                .filter(|&r| mask.get(r as usize).is_some_and(|b| *b))\n                .take(limit)",
  "                .filter(|&r| mask.get(r as usize).is_some() || true)\n                .take(limit)"),
 ("no engine binding", "src/engine.rs",
  "        if !members.made_by(self) {\n            return Err(EngineError::ForeignResult);",
  "        if false {\n            return Err(EngineError::ForeignResult);"),
 ("no permission at release", "src/engine.rs",
  "        self.allow(\n            actor,\n            Permission::MemberIds(&members.purpose),",
  "        self.allow(\n            actor,\n            Permission::Count(&members.purpose),"),
 ("explain reads predicate for ineligible", "src/engine.rs",
  "        let held = elig.is_allowed().then(|| {",
  "        let held = true.then(|| {"),
 ("export ignores selection categories", "src/outputs.rs",
  "        for &a in seg.attributes() {\n            let spec = policy.attribute(a);",
  "        for &a in &seg.attributes()[..0] {\n            let spec = policy.attribute(a);"),
 ("fairness shows small selected cells", "src/fairness.rs",
  "        let shown = |i: usize| pool_ok[i] && sel_ok[i] && out_ok[i];",
  "        let shown = |i: usize| pool_ok[i] || (sel_ok[i] && out_ok[i]);"),
]
missed = 0
for name, f, a, b in gates:
    p=root+'/'+f
    s=open(p).read()
    assert s.count(a)==1, (name, s.count(a))
    open(p,'w').write(s.replace(a,b))
    r=subprocess.run("cd %s && cargo test -q --test leaks 2>&1 | grep -E '^test result|FAILED|panicked at' | head -8"%root, shell=True, capture_output=True, text=True)
    open(p,'w').write(s)
    failed = 'FAILED' in r.stdout
    print(("CAUGHT " if failed else "MISSED ")+name, flush=True)
    print(r.stdout, flush=True)
    missed = missed + 1 if not failed else missed
sys.exit(1 if missed else 0)
