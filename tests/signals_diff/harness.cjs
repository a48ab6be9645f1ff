// Reference side of tests/signals_diff.rs.
//
// Reads requests, one JSON object per line, from the file named by argv[2]
// and writes one JSON answer per line to stdout:
//   {"op":"tcf_decode","s":STRING}    -> {"ok":NORMALISED_TCF}
//   {"op":"tcf_encode","m":TCF}       -> {"ok":STRING}   (iabtcf-es encoder)
//   {"op":"gpp_decode","s":STRING}    -> {"ok":{"sectionIds":[..],"sections":{..}}}
//   {"op":"gpp_encode","m":GPP}       -> {"ok":STRING}   (iabgpp-es encoder;
//                                         tcfcav1, uspv1, usnat, the US states)
// or {"err":MESSAGE}. TCF objects are in the normalised form described in
// tests/signals_diff.rs: every set an ascending id array, times ISO 8601.
'use strict';
const fs = require('fs');
const tcf = require('@iabtechlabtcf/core');
const tcfEncoder = tcf;
const gpp = require('@iabgpp/cmpapi');

const ids = (vector) => {
  const out = [];
  vector.forEach((v, id) => { if (v) out.push(id); });
  return out;
};
const boolsToIds = (arr) => arr.flatMap((v, i) => (v ? [i + 1] : []));
const idsToBools = (list, n) => Array.from({ length: n }, (_, i) => list.includes(i + 1));
// iabgpp-es lists an id once per range entry that holds it: sets here.
const uniqSorted = (a) => [...new Set(a)].sort((x, y) => x - y);
const sortRestrictions = (r) => r.sort((a, b) => a.purposeId - b.purposeId || a.restrictionType - b.restrictionType);

function fromTcModel(m, segments) {
  const pr = m.publisherRestrictions;
  const restrictions = pr.getRestrictions().map((r) => ({
    purposeId: r.purposeId,
    restrictionType: r.restrictionType,
    vendors: pr.getVendors(r).slice().sort((a, b) => a - b),
  }));
  return {
    version: m.version,
    created: m.created.toISOString(),
    lastUpdated: m.lastUpdated.toISOString(),
    cmpId: m.cmpId,
    cmpVersion: m.cmpVersion,
    consentScreen: m.consentScreen,
    consentLanguage: m.consentLanguage,
    vendorListVersion: m.vendorListVersion,
    policyVersion: m.policyVersion,
    isServiceSpecific: m.isServiceSpecific,
    useNonStandardTexts: m.useNonStandardTexts,
    specialFeatureOptins: ids(m.specialFeatureOptins),
    purposeConsents: ids(m.purposeConsents),
    purposeLegitimateInterests: ids(m.purposeLegitimateInterests),
    purposeOneTreatment: m.purposeOneTreatment,
    publisherCountryCode: m.publisherCountryCode,
    vendorConsents: ids(m.vendorConsents),
    vendorLegitimateInterests: ids(m.vendorLegitimateInterests),
    publisherRestrictions: sortRestrictions(restrictions),
    vendorsDisclosed: ids(m.vendorsDisclosed),
    vendorsAllowed: ids(m.vendorsAllowed),
    publisherConsents: ids(m.publisherConsents),
    publisherLegitimateInterests: ids(m.publisherLegitimateInterests),
    numCustomPurposes: m.numCustomPurposes,
    publisherCustomConsents: ids(m.publisherCustomConsents),
    publisherCustomLegitimateInterests: ids(m.publisherCustomLegitimateInterests),
    segments,
  };
}

function segmentsOf(s) {
  const names = { 1: 'vendorsDisclosed', 2: 'vendorsAllowed', 3: 'publisherTC' };
  return s.split('.').slice(1).map((seg) => {
    const first = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(seg[0]);
    return names[first >> 3] || 'unknown';
  });
}

function tcfDecode(s) {
  return fromTcModel(tcf.TCString.decode(s), segmentsOf(s));
}

// Bit-level encoding with the library's SegmentEncoder. TCString.encode
// first applies the GVL-dependent semantic rules (SemanticPreEncoder), which
// need a downloaded Global Vendor List; the bits it then writes are the
// SegmentEncoder's, used here directly.
function tcfEncode(j) {
  const m = new tcf.TCModel();
  m.cmpId = j.cmpId;
  m.cmpVersion = j.cmpVersion;
  m.consentScreen = j.consentScreen;
  m.consentLanguage = j.consentLanguage;
  m.vendorListVersion = j.vendorListVersion;
  m.policyVersion = j.policyVersion;
  m.isServiceSpecific = j.isServiceSpecific;
  m.useNonStandardTexts = j.useNonStandardTexts;
  m.purposeOneTreatment = j.purposeOneTreatment;
  m.publisherCountryCode = j.publisherCountryCode;
  m.specialFeatureOptins.set(j.specialFeatureOptins);
  m.purposeConsents.set(j.purposeConsents);
  m.purposeLegitimateInterests.set(j.purposeLegitimateInterests);
  m.vendorConsents.set(j.vendorConsents);
  m.vendorLegitimateInterests.set(j.vendorLegitimateInterests);
  for (const r of j.publisherRestrictions) {
    const pr = new tcf.PurposeRestriction(r.purposeId, r.restrictionType);
    for (const v of r.vendors) m.publisherRestrictions.add(v, pr);
  }
  // The restriction encoder asks the Global Vendor List which ids exist,
  // to let a range span ids that do not. A list holding every id gives
  // plain runs of consecutive ids. (Assigned to the field behind the `gvl`
  // setter, which would also drop restrictions the list's vendors do not
  // declare.)
  m.publisherRestrictions.gvl_ = { vendorIds: { has: (id) => id >= 1 && id <= 65535 } };
  m.vendorsDisclosed.set(j.vendorsDisclosed);
  m.vendorsAllowed.set(j.vendorsAllowed);
  m.publisherConsents.set(j.publisherConsents);
  m.publisherLegitimateInterests.set(j.publisherLegitimateInterests);
  m.numCustomPurposes = j.numCustomPurposes;
  m.publisherCustomConsents.set(j.publisherCustomConsents);
  m.publisherCustomLegitimateInterests.set(j.publisherCustomLegitimateInterests);
  m.created = new Date(j.created);
  m.lastUpdated = new Date(j.lastUpdated);
  return ['core', ...j.segments].map((seg) => tcfEncoder.SegmentEncoder.encode(m, seg)).join('.');
}

// iabgpp-es tcfeuv2 fields to the normalised TCF form.
function fromGppTcf(o, segments) {
  return {
    version: o.Version,
    created: new Date(o.Created).toISOString(),
    lastUpdated: new Date(o.LastUpdated).toISOString(),
    cmpId: o.CmpId,
    cmpVersion: o.CmpVersion,
    consentScreen: o.ConsentScreen,
    consentLanguage: o.ConsentLanguage,
    vendorListVersion: o.VendorListVersion,
    policyVersion: o.PolicyVersion,
    isServiceSpecific: o.IsServiceSpecific,
    useNonStandardTexts: o.UseNonStandardStacks,
    specialFeatureOptins: boolsToIds(o.SpecialFeatureOptins),
    purposeConsents: boolsToIds(o.PurposeConsents),
    purposeLegitimateInterests: boolsToIds(o.PurposeLegitimateInterests),
    purposeOneTreatment: o.PurposeOneTreatment,
    publisherCountryCode: o.PublisherCountryCode,
    vendorConsents: uniqSorted(o.VendorConsents),
    vendorLegitimateInterests: uniqSorted(o.VendorLegitimateInterests),
    publisherRestrictions: sortRestrictions(o.PublisherRestrictions.map((r) => ({
      purposeId: r.key, restrictionType: r.type, vendors: uniqSorted(r.ids),
    }))),
    vendorsDisclosed: uniqSorted(o.VendorsDisclosed),
    vendorsAllowed: uniqSorted(o.VendorsAllowed),
    publisherConsents: boolsToIds(o.PublisherConsents),
    publisherLegitimateInterests: boolsToIds(o.PublisherLegitimateInterests),
    numCustomPurposes: o.NumCustomPurposes,
    publisherCustomConsents: boolsToIds(o.PublisherCustomConsents),
    publisherCustomLegitimateInterests: boolsToIds(o.PublisherCustomLegitimateInterests),
    segments,
  };
}

const lowerFirst = (k) => k[0].toLowerCase() + k.slice(1);
const lowerKeys = (o) => {
  const u = {};
  for (const [k, v] of Object.entries(o)) u[lowerFirst(k)] = v;
  return u;
};
const SENSITIVE_SUB = new Set(['usin', 'usky', 'usri']);

function gppDecode(s) {
  const m = new gpp.GppModel(s);
  const obj = m.toObject();
  const parts = s.split('~');
  const idsList = m.getSectionIds();
  const sections = {};
  idsList.forEach((id, i) => {
    const name = [...gpp.Sections.SECTION_ID_NAME_MAP].find(([k]) => k === id)[1];
    const o = obj[name];
    if (name === 'tcfeuv2') {
      sections[name] = fromGppTcf(o, segmentsOf(parts[i + 1]));
    } else if (name === 'tcfcav1') {
      const u = lowerKeys(o);
      u.created = new Date(u.created).toISOString();
      u.lastUpdated = new Date(u.lastUpdated).toISOString();
      u.pubRestrictions = u.pubRestrictions.map((r) => ({ key: r.key, type: r.type, ids: r.ids }));
      delete u.pubPurposesSegmentType;
      delete u.disclosedVendorsSegmentType;
      sections[name] = u;
    } else if (name === 'usnat' || 'gpcSegmentType' in lowerKeys(o)) {
      // A section with a GPC sub-segment: toObject has no flag for it.
      const u = lowerKeys(o);
      u.gpcSegmentIncluded = parts[i + 1].includes('.');
      if (!u.gpcSegmentIncluded) { delete u.gpcSegmentType; u.gpc = false; }
      sections[name] = u;
    } else if (SENSITIVE_SUB.has(name)) {
      // usin, usky, usri: the sensitive-data consent sub-segment.
      const u = lowerKeys(o);
      u.sensitiveDataConsentSegmentIncluded = parts[i + 1].includes('.');
      sections[name] = u;
    } else {
      const u = {};
      for (const [k, v] of Object.entries(o)) u[lowerFirst(k)] = v;
      sections[name] = u;
    }
  });
  return { sectionIds: idsList, sections };
}

function gppEncode(j) {
  const m = new gpp.GppModel();
  for (const [name, o] of Object.entries(j.sections)) {
    if (name === 'tcfcav1') {
      // Any other field set resets Created and LastUpdated to now: those
      // two go last. NumCustomPurposes goes first: it sizes the custom
      // purpose bitfields.
      m.setFieldValue(name, 'NumCustomPurposes', o.numCustomPurposes);
      for (const [k, v] of Object.entries(o)) {
        if (['created', 'lastUpdated', 'violations', 'encoding'].includes(k)) continue;
        const value = k === 'pubRestrictions'
          ? v.map((r) => new gpp.RangeEntry(r.key, r.type, r.ids)) : v;
        m.setFieldValue(name, k[0].toUpperCase() + k.slice(1), value);
      }
      m.setFieldValue(name, 'Created', new Date(o.created));
      m.setFieldValue(name, 'LastUpdated', new Date(o.lastUpdated));
    } else if (name !== 'tcfeuv2') {
      for (const [k, v] of Object.entries(o)) {
        if (k === 'gpcSegmentType' || k === 'violations') continue;
        m.setFieldValue(name, k[0].toUpperCase() + k.slice(1), v);
      }
    } else {
      throw new Error(`section ${name} is not generated here`);
    }
  }
  return m.encode();
}

const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.length > 0);
const out = [];
for (const line of lines) {
  const req = JSON.parse(line);
  try {
    let ok;
    if (req.op === 'tcf_decode') ok = tcfDecode(req.s);
    else if (req.op === 'tcf_encode') ok = tcfEncode(req.m);
    else if (req.op === 'gpp_decode') ok = gppDecode(req.s);
    else if (req.op === 'gpp_encode') ok = gppEncode(req.m);
    else throw new Error(`unknown op ${req.op}`);
    out.push(JSON.stringify({ ok }));
  } catch (e) {
    out.push(JSON.stringify({ err: String(e && e.message ? e.message : e) }));
  }
}
process.stdout.write(out.join('\n') + '\n');
