// sso-proxy admin pages: plain JavaScript, no build step. Calls the JSON API under /_sso/api/
// with the page's CSRF token. Also runs on the Test Provider result page (in its popup), where
// it only reports the result to the admin page that opened it.
(() => {
  'use strict';
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const page = document.body.dataset.page;

  if (page === 'test-result') {
    const summary = document.getElementById('test-summary');
    const close = document.getElementById('close-test');
    if (close) close.addEventListener('click', () => window.close());
    if (summary && window.opener) {
      try {
        window.opener.postMessage(JSON.parse(summary.textContent), location.origin);
      } catch (e) {
        // The opener is gone or elsewhere: the result stays on this page.
      }
    }
    return;
  }

  const csrfMeta = $('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : '';
  const dataEl = document.getElementById('admin-data');
  const data = dataEl ? JSON.parse(dataEl.textContent) : {};

  async function api(method, path, body) {
    const opts = {
      method,
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': csrf, Accept: 'application/json' },
    };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const res = await fetch('/_sso/api/' + path, opts);
    let json = null;
    if (res.status !== 204) {
      try { json = await res.json(); } catch (e) { json = null; }
    }
    return { ok: res.ok, status: res.status, json };
  }

  function errorText(r) {
    if (r.json && r.json.problems) {
      return r.json.problems.map((p) => (p.field ? p.field + ': ' : '') + p.message).join('\n');
    }
    return (r.json && (r.json.message || r.json.error)) || 'HTTP ' + r.status;
  }

  function flash(el) {
    if (!el) return;
    el.classList.add('copied');
    setTimeout(() => el.classList.remove('copied'), 1500);
  }

  function copyText(text, el) {
    const fallback = () => {
      const ta = document.createElement('textarea');
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      try { document.execCommand('copy'); } catch (e) { /* nothing else to try */ }
      ta.remove();
      flash(el);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => flash(el), fallback);
    } else {
      fallback();
    }
  }

  // Groups and Invites: a small form and delete buttons.
  function simpleForm(id, path) {
    const form = document.getElementById(id);
    if (!form) return;
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = {};
      new FormData(form).forEach((v, k) => {
        if (String(v).trim()) body[k] = String(v).trim();
      });
      const r = await api('POST', path, body);
      const err = $('.form-error', form);
      if (r.ok) {
        location.reload();
      } else {
        err.textContent = errorText(r);
        err.hidden = false;
      }
    });
  }
  simpleForm('group-form', 'groups');
  simpleForm('invite-form', 'invites');
  function deleteButtons(selector, attr, path, what) {
    $$(selector).forEach((b) => b.addEventListener('click', async () => {
      const value = b.dataset[attr];
      if (!confirm(`Delete ${what} ${value}?`)) return;
      const r = await api('DELETE', path + '/' + encodeURIComponent(value));
      if (r.ok) location.reload(); else alert(errorText(r));
    }));
  }
  deleteButtons('.delete-group', 'name', 'groups', 'the group');
  deleteButtons('.delete-invite', 'email', 'invites', 'the invite for');

  if (page !== 'connections') return;

  // ---- Identity Providers ----
  const dialog = document.getElementById('connection-dialog');
  const presets = data.presets || { oidc: [], saml: [] };
  const state = { mode: 'create', protocol: 'oidc', preset: 'custom', id: null, editable: true, secretSet: false };

  const presetList = (protocol) => presets[protocol] || [];
  const presetOf = (protocol, id) =>
    presetList(protocol).find((p) => p.id === id) || presetList(protocol).find((p) => p.id === 'custom');
  const fieldsBox = () => $(`.fields[data-protocol="${state.protocol}"]`, dialog);

  function renderPresetChoices() {
    const box = document.getElementById('preset-choices');
    box.textContent = '';
    presetList(state.protocol).forEach((p, i) => {
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = 'preset';
      input.value = p.id;
      input.checked = i === 0;
      label.append(input, ' ' + p.label);
      box.append(label);
    });
  }
  $$('input[name="protocol"]', dialog).forEach((r) => r.addEventListener('change', () => {
    state.protocol = r.value;
    renderPresetChoices();
  }));

  const getPath = (obj, key) =>
    key.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
  function setPath(obj, key, value) {
    const parts = key.split('.');
    let o = obj;
    parts.slice(0, -1).forEach((k) => {
      if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
      o = o[k];
    });
    o[parts[parts.length - 1]] = value;
  }
  function deepMerge(a, b) {
    Object.keys(b).forEach((k) => {
      const nested = b[k] && typeof b[k] === 'object' && !Array.isArray(b[k]);
      if (nested && a[k] && typeof a[k] === 'object') deepMerge(a[k], b[k]); else a[k] = b[k];
    });
    return a;
  }

  function fill(values) {
    $$('[data-key]', fieldsBox()).forEach((el) => {
      const v = getPath(values, el.dataset.key);
      if (el.type === 'checkbox') {
        el.checked = v === true || v === 'true';
      } else if (el.dataset.secret || v === undefined || v === null) {
        el.value = '';
      } else {
        el.value = Array.isArray(v) ? v.join(', ') : String(v);
      }
    });
    $$('.metadata-file', fieldsBox()).forEach((el) => { el.value = ''; });
  }

  // Keycloak-only fields are hidden for other presets unless they hold a value.
  function presetVisibility() {
    $$('[data-only]', fieldsBox()).forEach((el) => {
      const input = $('[data-key]', el);
      el.hidden = el.dataset.only !== state.preset && !(input && input.value.trim());
    });
  }

  function updateDerived() {
    const box = fieldsBox();
    const idEl = $('[data-key="id"]', box);
    const id = (idEl && idEl.value.trim()) || '<id>';
    const base = data.public_url;
    $$('[data-derived]', box).forEach((el) => {
      const kind = el.dataset.derived;
      if (kind === 'webapp') el.value = base;
      else if (kind === 'callback') el.value = `${base}/callback_${id}`;
      else el.value = `${base}/_sso/saml/${id}/metadata`;
    });
  }

  function clearProblems() {
    $$('.problem', dialog).forEach((p) => { p.textContent = ''; });
    $$('.field.invalid', dialog).forEach((f) => f.classList.remove('invalid'));
    const fe = $('#form-error');
    fe.hidden = true;
    fe.textContent = '';
  }

  function showProblems(r) {
    clearProblems();
    const rest = [];
    const problems = (r.json && r.json.problems) || [];
    problems.forEach((p) => {
      const slot = p.field ? $(`.problem[data-problem="${CSS.escape(p.field)}"]`, fieldsBox()) : null;
      if (slot) {
        slot.textContent = p.message;
        slot.closest('.field').classList.add('invalid');
      } else {
        rest.push((p.field ? p.field + ': ' : '') + p.message);
      }
    });
    if (!problems.length) rest.push(errorText(r));
    if (rest.length) {
      const fe = $('#form-error');
      fe.textContent = rest.join(' · ');
      fe.hidden = false;
    }
    const first = $('.field.invalid', dialog) || $('#form-error');
    if (first) first.scrollIntoView({ block: 'center' });
  }

  function collect() {
    const body = { protocol: state.protocol, provider: state.preset };
    $$('[data-key]', fieldsBox()).forEach((el) => {
      const key = el.dataset.key;
      if (key === 'id') {
        if (state.mode === 'create' && el.value.trim()) body.id = el.value.trim();
        return;
      }
      if (el.type === 'checkbox') {
        setPath(body, key, el.checked);
        return;
      }
      const v = el.value.trim();
      // An emptied admin role means "no role mapping", not "the preset's default".
      if (v !== '' || key === 'admin_role') setPath(body, key, v);
    });
    return body;
  }

  function showStep(step) {
    $('#step-choose').hidden = step !== 'choose';
    $('#step-configure').hidden = step !== 'configure';
  }

  function showFields() {
    $$('.fields', dialog).forEach((f) => { f.hidden = f.dataset.protocol !== state.protocol; });
    const p = presetOf(state.protocol, state.preset);
    $('#preset-name').textContent = `${state.protocol.toUpperCase()} · ${p ? p.label : state.preset}`;
    const box = fieldsBox();
    $$('input, select, textarea', box).forEach((el) => {
      if (!el.dataset.derived) el.disabled = !state.editable;
    });
    $('[data-key="id"]', box).readOnly = state.mode !== 'create';
    $('#save-connection').hidden = !state.editable;
    $('#back-step').hidden = state.mode !== 'create';
    $$('[data-secret]', box).forEach((el) => {
      el.placeholder = state.secretSet ? '•••••••• (set; leave empty to keep)' : '';
    });
    const tr = $('#test-result');
    tr.hidden = true;
    tr.textContent = '';
    updateDerived();
  }

  function randomSuffix() {
    const bytes = new Uint8Array(3);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  document.getElementById('new-connection').addEventListener('click', () => {
    Object.assign(state, { mode: 'create', protocol: 'oidc', preset: 'custom', id: null, editable: true, secretSet: false });
    $('#dialog-title').textContent = 'New Provider Connection';
    $('input[name="protocol"][value="oidc"]', dialog).checked = true;
    renderPresetChoices();
    clearProblems();
    showStep('choose');
    dialog.showModal();
  });

  $('#next-step').addEventListener('click', () => {
    const chosen = $('input[name="preset"]:checked', dialog);
    state.preset = chosen ? chosen.value : 'custom';
    const p = presetOf(state.protocol, state.preset);
    const values = JSON.parse(JSON.stringify(p ? p.defaults : {}));
    values.id = `${state.preset}-${randomSuffix()}`;
    values.display_name = p ? p.label : '';
    showFields();
    fill(values);
    presetVisibility();
    updateDerived();
    showStep('configure');
  });
  $('#back-step').addEventListener('click', () => { clearProblems(); showStep('choose'); });
  $$('.close-dialog', dialog).forEach((b) => b.addEventListener('click', () => dialog.close()));
  $$('[data-key="id"]', dialog).forEach((el) => el.addEventListener('input', updateDerived));
  $$('.copy-derived', dialog).forEach((b) => b.addEventListener('click', () => {
    copyText(document.getElementById(b.dataset.target).value, b);
  }));
  $$('.metadata-file', dialog).forEach((input) => input.addEventListener('change', () => {
    const file = input.files && input.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { document.getElementById(input.dataset.target).value = reader.result; };
    reader.readAsText(file);
  }));

  async function openEdit(id) {
    const r = await api('GET', 'connections/' + encodeURIComponent(id));
    if (!r.ok) {
      alert(errorText(r));
      return;
    }
    const c = r.json;
    Object.assign(state, {
      mode: c.editable ? 'edit' : 'view',
      protocol: c.protocol,
      preset: c.provider,
      id: c.id,
      editable: !!c.editable,
      secretSet: !!(c.client_secret_set || c.sp_private_key_set),
    });
    $('#dialog-title').textContent = (c.editable ? 'Edit' : 'View') + ' Provider Connection';
    const p = presetOf(state.protocol, state.preset);
    const values = deepMerge(JSON.parse(JSON.stringify(p ? p.defaults : {})), c.settings || {});
    values.id = c.id;
    clearProblems();
    showFields();
    fill(values);
    presetVisibility();
    updateDerived();
    showStep('configure');
    dialog.showModal();
  }

  $('#save-connection').addEventListener('click', async () => {
    const body = collect();
    const r = state.mode === 'create'
      ? await api('POST', 'connections', body)
      : await api('PUT', 'connections/' + encodeURIComponent(state.id), body);
    if (r.ok) {
      dialog.close();
      location.reload();
    } else {
      showProblems(r);
    }
  });

  // Test Provider: the popup is opened at the click (popup blockers), then sent to the URL.
  const popup = () => window.open('about:blank', 'sso-test-provider', 'popup,width=780,height=860');
  async function runTest(path, body, win) {
    const r = await api('POST', path, body);
    if (!r.ok) {
      if (win) win.close();
      return r;
    }
    if (win) win.location.href = r.json.url; else window.open(r.json.url, 'sso-test-provider');
    return r;
  }

  $('#test-provider').addEventListener('click', async () => {
    clearProblems();
    const win = popup();
    const tr = $('#test-result');
    tr.hidden = false;
    tr.className = 'test-result';
    tr.textContent = 'Waiting for the identity provider in the Test Provider window…';
    const path = state.mode === 'create'
      ? 'connections/test'
      : 'connections/' + encodeURIComponent(state.id) + '/test';
    const r = await runTest(path, state.mode === 'view' ? {} : collect(), win);
    if (!r.ok) {
      tr.hidden = true;
      showProblems(r);
    }
  });

  window.addEventListener('message', (ev) => {
    if (ev.origin !== location.origin || !ev.data || ev.data.type !== 'sso-test-result') return;
    const tr = $('#test-result');
    tr.hidden = false;
    tr.className = 'test-result ' + (ev.data.ok ? 'ok' : 'fail');
    tr.textContent = '';
    const head = document.createElement('strong');
    head.textContent = ev.data.ok ? 'Test succeeded' : 'Test failed';
    tr.append(head);
    if (ev.data.error) {
      const p = document.createElement('div');
      p.textContent = ev.data.error;
      tr.append(p);
    }
    const id = ev.data.identity;
    if (id) {
      const dl = document.createElement('dl');
      [
        ['User ID', id.user],
        ['Email', id.email],
        ['Name', id.name],
        ['Groups', (id.groups || []).join(', ')],
        ['Admin', id.admin ? 'yes' : 'no'],
        ['Login rules', ev.data.admitted ? 'would admit' : 'would refuse'],
      ].forEach(([k, v]) => {
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        dd.textContent = v === undefined || v === null || v === '' ? '—' : v;
        dl.append(dt, dd);
      });
      tr.append(dl);
    }
    tr.scrollIntoView({ block: 'nearest' });
  });

  $$('#connections tbody tr[data-id]').forEach((row) => {
    const id = row.dataset.id;
    const path = 'connections/' + encodeURIComponent(id);
    const toggle = $('.active-toggle', row);
    toggle.addEventListener('change', async () => {
      const r = await api('POST', path + '/active', { active: toggle.checked });
      if (r.ok) {
        location.reload();
      } else {
        toggle.checked = !toggle.checked;
        alert(errorText(r));
      }
    });
    $('.edit', row).addEventListener('click', () => openEdit(id));
    $('.test', row).addEventListener('click', async () => {
      const r = await runTest(path + '/test', {}, popup());
      if (!r.ok) alert(errorText(r));
    });
    $('.delete', row).addEventListener('click', async () => {
      if (!confirm(`Delete the connection ${id}? Users signed in through it keep their session until it ends.`)) return;
      const r = await api('DELETE', path);
      if (r.ok) location.reload(); else alert(errorText(r));
    });
    $('.copy-id', row).addEventListener('click', (ev) => copyText(id, ev.currentTarget));
  });
})();
