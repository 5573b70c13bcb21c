// The chat's model picker: under it, what the chosen model is (its description, its price
// per million tokens in and out, how much it reads), from the option's data-about.
const select = document.getElementById("model");
const about = document.getElementById("model-about");
if (select && about) {
  const show = () => {
    const option = select.options[select.selectedIndex];
    about.textContent = option ? option.dataset.about || "" : "";
  };
  select.addEventListener("change", show);
  show();
}
