// Checkout: the address only for delivery, the tip amount only for "Other amount", and the
// summary's delivery fee, tip and total in step with the choices. The server computes and checks
// everything again: without this script the page works the same, with the fields all shown.
(function () {
  "use strict";
  const form = document.getElementById("checkout-form");
  if (!form) return;
  const cents = (text) => Math.round(parseFloat(text || "0") * 100) || 0;
  const subtotal = cents(form.dataset.subtotal);
  const fee = cents(form.dataset.deliveryFee);
  const symbol = form.dataset.currency || "€";
  const show = (value) =>
    symbol + (value / 100).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const chosen = (name) => {
    const input = form.querySelector(`input[name="${name}"]:checked`);
    return input ? input.value : "";
  };

  function update() {
    const delivery = chosen("fulfilment") === "delivery";
    const address = document.getElementById("address-field");
    if (address) address.hidden = !delivery;
    const tipChoice = chosen("tip_choice");
    const custom = document.getElementById("tip-amount-field");
    if (custom) custom.hidden = tipChoice !== "custom";
    let tip = 0;
    if (tipChoice === "custom") {
      const amount = form.querySelector('input[name="tip_amount"]');
      tip = Math.max(0, cents(amount && amount.value));
    } else if (tipChoice) {
      tip = Math.round((subtotal * parseInt(tipChoice, 10)) / 100);
    }
    const deliveryFee = delivery ? fee : 0;
    const values = { fee: deliveryFee, tip: tip, total: subtotal + deliveryFee + tip };
    document.querySelectorAll("[data-sum]").forEach((element) => {
      element.textContent = show(values[element.dataset.sum]);
    });
    const feeRow = document.getElementById("checkout-fee-row");
    if (feeRow && fee) feeRow.hidden = !delivery;
  }

  form.addEventListener("change", update);
  form.addEventListener("input", (event) => {
    if (event.target.name === "tip_amount") update();
  });
  update();
})();
