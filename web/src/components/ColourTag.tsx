// A tag of a brand's own colour: the colour as a dot beside text in the theme's text
// colour, so that any colour staff pick keeps the name readable (WCAG AA contrast).
import { Tag, type TagProps } from 'antd';

export function ColourTag({ colour, children, ...rest }: TagProps & { colour: string }) {
  return (
    <Tag {...rest}>
      <span aria-hidden style={{ display: 'inline-block', width: 8, height: 8, borderRadius: 4, background: colour, marginInlineEnd: 6 }} />
      {children}
    </Tag>
  );
}
